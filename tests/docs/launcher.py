"""``lossless`` for the documentation's shell commands, without paying for the imports each time.

The documents run many ``lossless`` commands; most of each run would be Python importing
SQLAlchemy, Alembic and psycopg. ``Launcher`` starts one process that imports ``toolkit.cli``
once and listens on a Unix socket, and puts a ``lossless`` executable first on ``PATH``: a
small stdlib-only script that sends its arguments, environment, working directory and
standard streams (the file descriptors themselves) to that process and exits with the code
it gets back. The launcher forks one child per run, which takes over those streams and
calls ``toolkit.cli.main`` as the console script does: bash pipes and redirections behave
as with the installed command. ``tests/docs/test_completion.py`` runs the installed script
itself.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_SHIM = """#!{python} -S
import json, os, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect({socket!r})
request = {{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}
socket.send_fds(connection, [json.dumps(request).encode() + b"\\n"], [0, 1, 2])
reply = connection.makefile().readline()
sys.exit(json.loads(reply)["code"] if reply else 70)
"""


class Launcher:
    """The test side: a directory holding the ``lossless`` shim, and the process behind it."""

    def __init__(self) -> None:
        self._files = tempfile.TemporaryDirectory(prefix="lossless-docs-")
        folder = Path(self._files.name)
        address = str(folder / "launcher.sock")
        self.bin = folder / "bin"
        self.bin.mkdir()
        shim = self.bin / "lossless"
        shim.write_text(_SHIM.format(python=sys.executable, socket=address))
        shim.chmod(0o755)
        self._process = subprocess.Popen(
            [sys.executable, "-u", "-m", "tests.docs.launcher", address],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the docs launcher did not start (exit {self._process.wait()})")

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the launcher stops when its stdin closes
        self._process.wait(timeout=60)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._files.cleanup()


def serve(address: str) -> None:
    """The launcher process: fork a ``lossless`` child per connection on ``address``.

    Runs until its stdin closes; children are forked from the main thread and leave through
    ``SystemExit`` like the console script (buffers flushed, ``atexit`` handlers run).
    """
    import toolkit.cli  # noqa: F401  (the imports every run would otherwise repeat)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen()
    running: dict[int, socket.socket] = {}
    print("ready", flush=True)
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        selector.register(sys.stdin, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select(timeout=0.02):
                if key.fileobj is sys.stdin:
                    if not sys.stdin.readline():
                        return
                    continue
                connection, _ = listener.accept()
                request, fds = _receive(connection)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    raise SystemExit(_child(request, fds))
                for fd in fds:
                    os.close(fd)
                running[pid] = connection
            for pid in list(running):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    with running.pop(pid) as connection:
                        code = os.waitstatus_to_exitcode(status)
                        connection.sendall(json.dumps({"code": code}).encode() + b"\n")


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    while not message.endswith(b"\n"):
        message += connection.recv(1 << 20)
    request: dict[str, Any] = json.loads(message)
    return request, fds


def _child(request: dict[str, Any], fds: list[int]) -> int:
    """Become ``lossless ARGV`` with the caller's environment, directory and streams."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["lossless", *request["argv"]]
    from toolkit.cli import main

    return main(request["argv"])


if __name__ == "__main__":
    serve(sys.argv[1])
