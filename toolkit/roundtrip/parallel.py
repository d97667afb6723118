"""The steps of a project round trip, shared out between processes.

Worker ``w`` of ``n`` runs the sequential round trip (``_ProjectRun.on_ladder``) with a
ladder database of its own and checks the revisions at positions ``w``, ``w + n``,
``w + 2n``... of the history, only upgrading its ladder through the others. So every step
still starts from a clone of a ladder standing exactly at the step's parents, and a
revision whose upgrade fails blocks the same later steps in every worker. Neighbouring
revisions cost about the same, so the shares are even.

Processes rather than threads: Alembic's ``context`` and ``op``, the connection guard and
the statement recorder are process-wide. Each worker is a new interpreter
(``python -m toolkit.roundtrip.worker JOB RESULT``, with the caller's ``sys.path``), not a
``multiprocessing`` child, so that a caller's script is never imported again; the job and
its result travel as pickles in a temporary folder.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ToolkitError

#: Projects with fewer revisions are checked in one process (another one costs about 1 s).
PARALLEL_FROM = 12
#: At most this many processes by default: a step is mostly the server's work.
MAX_JOBS = 2
WORKER_MODULE = "toolkit.roundtrip.worker"

#: Whether this process checks the revision at this index of the history: True (it does),
#: False (another process does), None (no later revision is this process's: stop).
Claim = Callable[[int], "bool | None"]


def every_step(index: int) -> bool:
    """The claim of a round trip in one process: every revision."""
    del index
    return True


@dataclass(frozen=True)
class Share:
    """The claim of worker ``worker`` of ``workers``, for a history of ``revisions``."""

    worker: int
    workers: int
    revisions: int

    def __call__(self, index: int) -> bool | None:
        owned = range(self.worker, self.revisions, self.workers)
        if not owned or index > owned[-1]:
            return None
        return index % self.workers == self.worker


def default_jobs(revisions: int) -> int:
    """Processes for a project of ``revisions`` revisions: 2 from ``PARALLEL_FROM`` on
    (when the machine has 2 CPUs), else 1."""
    if revisions < PARALLEL_FROM:
        return 1
    return max(1, min(MAX_JOBS, os.cpu_count() or 1))


class WorkerError(ToolkitError):
    """A worker process ended without a result (killed, or crashed before it could say)."""


def in_processes(job: Any, *, jobs: int, revisions: int) -> list[Any]:
    """Run ``job`` in ``jobs`` worker processes at once, each with its ``Share``; their
    results, in worker order, or the first exception one of them raised."""
    with tempfile.TemporaryDirectory(prefix="lossless-workers-") as folder:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            for worker in range(jobs):
                given = Path(folder) / f"job-{worker}.pickle"
                result = Path(folder) / f"result-{worker}.pickle"
                given.write_bytes(pickle.dumps((job, Share(worker, jobs, revisions))))
                argv = [sys.executable, "-m", WORKER_MODULE, str(given), str(result)]
                processes.append((subprocess.Popen(argv, env=env), result))
            for process, _ in processes:
                process.wait()
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait()
        return [_result(process, result) for process, result in processes]


def _result(process: subprocess.Popen[bytes], path: Path) -> Any:
    if not path.is_file():
        raise WorkerError(
            f"a round-trip worker process ended with exit status {process.returncode} and no result"
        )
    outcome, value = pickle.loads(path.read_bytes())
    if outcome == "error":
        raise value
    return value


def run_worker(work: Callable[[Any, Share], Any], given: Path, result: Path) -> None:
    """In a worker process: ``work(job, share)``; its result, or what it raised, pickled."""
    job, share = pickle.loads(given.read_bytes())
    try:
        outcome: tuple[str, Any] = ("done", work(job, share))
    except Exception as exc:
        outcome = ("error", exc)
    try:
        data = pickle.dumps(outcome)
    except Exception as exc:  # an exception that does not pickle: its type and message
        data = pickle.dumps(("error", WorkerError(f"{type(exc).__name__}: {outcome[1]}")))
    result.write_bytes(data)
