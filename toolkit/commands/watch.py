"""Follow a migration while it runs: which revision is running, how long each operation took.

Alembic logs ``Running <step>`` as each revision starts and every toolkit operation logs its
``OpResult`` as it publishes it (``toolkit.ops.results.publish``); a logging handler turns
both into timestamped progress lines and a timeline, so the final report can show seconds
and rows per second per operation without the operations knowing about clocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from toolkit.commands.server import Progress
from toolkit.ops.results import OpResult

_ALEMBIC_LOGGER = "alembic.runtime.migration"
_OPS_LOGGER = "lossless.ops"
#: Loggers whose INFO lines are worth showing a DBA while a migration runs.
_WATCHED = (_ALEMBIC_LOGGER, "lossless", "toolkit")


@dataclass(frozen=True)
class Step:
    """One revision Alembic started: ``upgrade a1 -> b2``."""

    direction: str
    source: tuple[str, ...]
    destination: tuple[str, ...]
    message: str

    @property
    def name(self) -> str:
        """``upgrade a1 -> b2``."""
        return f"{self.direction} {_ids(self.source)} -> {_ids(self.destination)}"

    @property
    def revision(self) -> str:
        """The revision whose script runs: the destination going up, the source going down."""
        return _ids(self.destination if self.direction == "upgrade" else self.source)

    def describe(self) -> str:
        """``upgrade a1 -> b2: its message``."""
        return f"{self.name}: {self.message}" if self.message else self.name


@dataclass(frozen=True)
class TimedResult:
    """An operation's result, the revision it ran in, and its wall time when known."""

    result: OpResult
    revision: str | None
    seconds: float | None

    @property
    def rows(self) -> int:
        """Rows the operation wrote (moved, stashed, restored, collapsed, filled)."""
        counts = self.result.counts
        return sum(
            counts.get(k, 0) for k in ("moved", "stashed", "restored", "collapsed", "filled")
        )

    @property
    def rows_per_second(self) -> float | None:
        if not self.seconds or not self.rows:
            return None
        return self.rows / self.seconds


@dataclass
class Timeline:
    """What the watcher saw, in order."""

    started: float = field(default_factory=time.perf_counter)
    steps: list[Step] = field(default_factory=list)
    #: (revision running, seconds since the previous event) per published result.
    publications: list[tuple[str | None, float]] = field(default_factory=list)

    @property
    def last_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def timed(self, results: Sequence[OpResult]) -> tuple[TimedResult, ...]:
        """Pair ``results`` (in publication order) with the timings seen for them."""
        if len(results) != len(self.publications):
            # An env.py that reconfigured logging hid some publications: no timings.
            return tuple(TimedResult(r, None, None) for r in results)
        return tuple(
            TimedResult(r, revision, seconds)
            for r, (revision, seconds) in zip(results, self.publications, strict=True)
        )


class _Watcher(logging.Handler):
    def __init__(self, timeline: Timeline, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self.timeline = timeline
        self.progress = progress
        self.last_event = timeline.started

    def emit(self, record: logging.LogRecord) -> None:
        now = time.perf_counter()
        stamp = f"[{now - self.timeline.started:8.2f}s]"
        if record.name == _ALEMBIC_LOGGER and record.msg == "Running %s" and record.args:
            step = _step(record.args[0] if isinstance(record.args, tuple) else record.args)
            self.timeline.steps.append(step)
            self.progress(f"{stamp} {step.describe()}")
        elif record.name == _OPS_LOGGER and record.funcName == "publish":
            seconds = now - self.last_event
            last = self.timeline.last_step
            revision = last.revision if last else None
            self.timeline.publications.append((revision, seconds))
            self.progress(f"{stamp}   {record.getMessage()} ({seconds:.2f}s)")
        elif record.name.startswith(("lossless", "toolkit")):
            self.progress(f"{stamp}   {record.getMessage()}")
        else:
            return
        self.last_event = now


def _step(step: object) -> Step:
    doc = str(getattr(step, "doc", "") or "").strip().splitlines()
    return Step(
        direction="upgrade" if getattr(step, "is_upgrade", True) else "downgrade",
        source=tuple(getattr(step, "from_revisions_no_deps", ())),
        destination=tuple(getattr(step, "to_revisions_no_deps", ())),
        message=doc[0] if doc else "",
    )


def _ids(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) or "base"


@contextmanager
def watching(progress: Progress) -> Iterator[Timeline]:
    """Collect a ``Timeline`` (and send progress lines) for the migration run in the block."""
    timeline = Timeline()
    handler = _Watcher(timeline, progress)
    loggers = [logging.getLogger(name) for name in _WATCHED]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield timeline
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
