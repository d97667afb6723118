"""Throwaway servers under both usual layouts: root with the installation in a 0700
directory (containers, CI), and an ordinary user. Nothing outside lossless's own temporary
directory changes permission."""

from __future__ import annotations

import encodings.idna  # noqa: F401  (loaded now: the child below may not reach the stdlib)
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from toolkit.errors import ProvisioningError
from toolkit.postgres.embedded import wheel_binaries
from toolkit.postgres.throwaway import Binaries, ThrowawayServer, start_throwaway
from toolkit.postgres.unprivileged import RUN_AS

SMOKE_USER = "lossless_smoke"


def _modes(*paths: Path) -> dict[Path, int]:
    """The mode of each path and of every directory above it."""
    return {p: p.stat().st_mode for path in paths for p in (path, *path.parents)}


def _install_under(directory: Path) -> Binaries:
    """The wheel's installation hard-linked under ``directory``, keeping its layout."""
    wheel = wheel_binaries()
    base = Path(os.path.commonpath([wheel.bindir, *wheel.trees]))
    for tree in (wheel.bindir, *wheel.trees):
        shutil.copytree(tree, directory / tree.relative_to(base), copy_function=os.link)
    return Binaries(
        directory / wheel.bindir.relative_to(base),
        tuple(directory / t.relative_to(base) for t in wheel.trees),
        wheel.label,
    )


def _process_ids(pid: int) -> dict[str, str]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {k: fields[k].split()[0] if fields[k].split() else "" for k in ("Uid", "Gid")} | {
        "Groups": fields["Groups"].strip()
    }


def _query(server: ThrowawayServer) -> tuple[object, ...]:
    with psycopg.connect(server.url) as conn:
        conn.execute("CREATE TABLE t AS SELECT generate_series(1, 10) AS n")
        row = conn.execute("SELECT count(*), sum(n), current_user FROM t").fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def private_dir(tmp_path: Path) -> Iterator[Path]:
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    yield private


def test_installation_in_a_0700_directory(private_dir: Path) -> None:
    binaries = _install_under(private_dir / "venv")
    wheel = wheel_binaries()
    before = _modes(private_dir, binaries.bindir, *binaries.trees, wheel.bindir, *wheel.trees)

    server = start_throwaway(binaries)
    try:
        assert _query(server) == (10, 55, "postgres")
        pid = server.pid()
        assert pid is not None
        ids = _process_ids(pid)
        if os.geteuid() == 0:
            account = pwd.getpwnam(RUN_AS)
            # Its own user and group, none of root's groups.
            assert ids == {
                "Uid": str(account.pw_uid),
                "Gid": str(account.pw_gid),
                "Groups": "",
            }
            # It could not enter the 0700 directory: it runs from links in its own directory.
            assert server.binaries.bindir.is_relative_to(server.root)
            staged = server.binaries.program("postgres")
            assert staged.stat().st_ino == binaries.program("postgres").stat().st_ino
        else:
            assert ids["Uid"] == str(os.getuid())
            assert server.binaries == binaries
    finally:
        server.stop()
    assert not server.root.exists()
    assert _modes(private_dir, binaries.bindir, *binaries.trees, wheel.bindir, *wheel.trees) == (
        before
    )
    assert private_dir.stat().st_mode & 0o7777 == 0o700


def _smoke_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SMOKE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SMOKE_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SMOKE_USER)


def _smoke(binaries: Binaries) -> dict[str, object]:
    server = start_throwaway(binaries)
    try:
        pid = server.pid()
        assert pid is not None
        return {
            "row": list(_query(server)),
            "uid": _process_ids(pid)["Uid"],
            "account": server.account is not None,
            "in_place": server.binaries == binaries,
        }
    finally:
        server.stop()


def _as_user(user: pwd.struct_passwd, binaries: Binaries) -> dict[str, object]:
    """Run ``_smoke`` in a child that dropped root like ``setpriv --clear-groups`` does.

    A fork rather than a new interpreter: the interpreter, the checkout and its virtualenv
    may sit in a 0700 directory (root's home) the ordinary user cannot enter.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.environ["HOME"] = "/"
            os.write(write, json.dumps(_smoke(binaries)).encode())
            status = 0
        except BaseException as exc:
            os.write(write, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as pipe:
        report: dict[str, object] = json.loads(pipe.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    return report


@pytest.fixture
def user_home() -> Iterator[Path]:
    """A 0700 home directory outside pytest's own (root's, which others cannot enter)."""
    home = Path(tempfile.mkdtemp(prefix="lossless-home-"))
    try:
        yield home
    finally:
        shutil.rmtree(home)


def test_ordinary_user(user_home: Path) -> None:
    binaries = _install_under(user_home / "venv")
    if os.geteuid() != 0:  # already an ordinary user: the smoke runs as is
        report = _smoke(binaries)
        assert report["uid"] == str(os.getuid())
    else:
        user = _smoke_user()
        # The user's own installation (hard links to the wheel's files) in their 0700 home.
        for dirpath, _dirs, _files in os.walk(user_home):
            os.chown(dirpath, user.pw_uid, user.pw_gid)
        report = _as_user(user, binaries)
        assert report["uid"] == str(user.pw_uid)
    assert report["row"] == [10, 55, "postgres"]
    assert report["account"] is False
    assert report["in_place"] is True
    assert user_home.stat().st_mode & 0o7777 == 0o700


def test_a_temporary_directory_the_server_account_cannot_reach(user_home: Path) -> None:
    """As root, TMPDIR inside a 0700 directory: one clear error, nothing left, no chmod."""
    if os.geteuid() != 0:  # an ordinary user runs the server itself: it simply starts
        server = start_throwaway(wheel_binaries(), base_dir=str(user_home))
        server.stop()
    else:
        with pytest.raises(ProvisioningError) as info:
            start_throwaway(wheel_binaries(), base_dir=str(user_home))
        message = str(info.value)
        assert f"cannot enter {user_home} (mode 700)" in message
        assert "set TMPDIR to a directory others may traverse" in message
    assert list(user_home.iterdir()) == []
    assert user_home.stat().st_mode & 0o7777 == 0o700
