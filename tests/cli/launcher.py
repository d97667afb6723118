"""Run ``lossless`` in a process of its own without paying for Python's imports each time.

Most of a ``python -m toolkit.cli`` run is spent importing SQLAlchemy, Alembic and psycopg
(about 0.6 s, run after run). The launcher is a process that imports ``toolkit.cli`` once
and then forks one child per run: the child is a real process with the run's own
environment, stdin (empty), stdout, stderr and exit code, and it calls
``toolkit.cli.main`` exactly as the console script does, then exits the interpreter
normally (``SystemExit``: buffers flushed, ``atexit`` handlers run). Only the interpreter's
start-up is shared; the tests that start a run in the background, and the one that runs
the installed console script, start a fresh interpreter and cover that path.

Protocol, one JSON line each way per run: ``{"argv", "env", "cwd", "out", "err"}`` in;
``{"pid"}`` once the child is forked, then ``{"code"}`` when it has exited.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Launcher:
    """The test side: starts the launcher process and runs ``lossless`` through it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._files = tempfile.TemporaryDirectory(prefix="lossless-cli-")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli.launcher"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(env),
            cwd=ROOT,
        )
        self._runs = 0

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> tuple[int, str, str]:
        """Run ``lossless ARGV`` in a fresh child; returns (exit code, stdout, stderr)."""
        self._runs += 1
        out = Path(self._files.name) / f"{self._runs}.out"
        err = Path(self._files.name) / f"{self._runs}.err"
        request = {
            "argv": list(argv),
            "env": dict(env),
            "cwd": os.getcwd(),
            "out": str(out),
            "err": str(err),
        }
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        pid = self._reply(timeout=60)["pid"]
        try:
            code = self._reply(timeout=timeout)["code"]
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            self._reply(timeout=60)
            raise
        return code, out.read_text(), err.read_text()

    def _reply(self, *, timeout: float) -> dict[str, Any]:
        stream = self._process.stdout
        assert stream is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"lossless did not finish within {timeout:g}s")
        line = stream.readline()
        if not line:
            raise RuntimeError(f"the launcher died (exit {self._process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        """Stop the launcher and remove the captured output."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._files.cleanup()


def serve() -> None:
    """The launcher process: import once, fork a child per request line on stdin."""
    import toolkit.cli  # noqa: F401  (the imports every run would otherwise repeat)

    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            raise SystemExit(_child(request))
        _answer({"pid": pid})
        _, status = os.waitpid(pid, 0)
        _answer({"code": os.waitstatus_to_exitcode(status)})


def _answer(reply: dict[str, int]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


def _child(request: dict[str, Any]) -> int:
    """Become ``lossless ARGV``: its environment, directory and standard streams."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = ["lossless", *request["argv"]]

    from toolkit.cli import main

    return main(request["argv"])


if __name__ == "__main__":
    serve()
