"""Preflight: run a migration step inside a transaction that is rolled back, and report.

The DBA's "what will this do to my data?": the real revisions run on the real data, the
operations count what they move, stash, collapse, restore or lose, a refusal is caught and
reported, and then everything is rolled back. The tables the step touches are locked for
the duration (as the real run would lock them), under the same ``lock_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from toolkit.commands.lock_watch import HeldLock
from toolkit.commands.locked_step import run_step, step_direction
from toolkit.commands.server import Progress, ServerInfo, silent
from toolkit.commands.settings import RunSettings
from toolkit.commands.watch import TimedResult
from toolkit.errors import DataRefusedError
from toolkit.roundtrip.dropped import DroppedData

__all__ = ["PreflightReport", "Refusal", "preflight", "step_direction"]


@dataclass(frozen=True)
class Refusal:
    """An operation that refused to run, as ``DataRefusedError`` described it."""

    table: str
    column: str | None
    count: int
    samples: tuple[str, ...]
    reason: str
    hint: str | None
    message: str


@dataclass(frozen=True)
class PreflightReport:
    """What a step would do; nothing of it was kept."""

    direction: str
    target: str
    server: ServerInfo
    database: str
    revision: str
    before: tuple[str, ...]
    #: Where the step got to before the rollback (the target revision when it succeeded).
    after: tuple[str, ...]
    operations: tuple[TimedResult, ...]
    refused: Refusal | None
    failure: str | None
    seconds: float
    #: The ``-x NAME=VALUE`` options the revisions were given.
    x: Mapping[str, str] = field(default_factory=dict)
    #: Data the step drops, measured by snapshots (not reported by an operation).
    dropped: tuple[DroppedData, ...] = ()
    #: The table locks the run was seen holding, and for how long (sampled).
    locks: tuple[HeldLock, ...] = ()

    @property
    def lost(self) -> int:
        return sum(t.result.lost for t in self.operations)

    @property
    def ok(self) -> bool:
        """True when the step would succeed, and neither lose nor drop data."""
        done = self.refused is None and self.failure is None
        return done and self.lost == 0 and not self.dropped


def preflight(
    settings: RunSettings,
    revision: str = "heads",
    *,
    x: Mapping[str, str] | None = None,
    progress: Progress = silent,
) -> PreflightReport:
    """Run the step to ``revision`` (up or down) in a transaction that is rolled back.

    ``x`` holds the ``-x NAME=VALUE`` options the revisions read, as for the real run.
    """
    run = run_step(
        settings,
        revision,
        x=dict(x or {}),
        purpose="preflight",
        rollback=True,
        progress=progress,
    )
    return PreflightReport(
        direction=run.direction,
        target=run.target.label,
        server=run.server,
        database=run.database,
        revision=run.goal,
        before=run.before,
        after=run.after,
        operations=run.operations,
        refused=None if run.refused is None else _refusal(run.refused),
        failure=run.failure,
        seconds=run.seconds,
        x=run.x,
        dropped=run.dropped,
        locks=run.locks,
    )


def _refusal(exc: DataRefusedError) -> Refusal:
    return Refusal(
        table=exc.table,
        column=exc.column,
        count=exc.count,
        samples=tuple(str(s) for s in exc.samples),
        reason=exc.reason,
        hint=exc.hint,
        message=str(exc),
    )
