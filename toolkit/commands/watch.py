"""Follow a migration while it runs: which revision is running, how long each operation took.

Fed by the run itself, never by its log lines: the plan (the steps Alembic will run, in its
order, computed before the run) names what comes next; Alembic's ``on_version_apply``
(``toolkit.revision_events``) says when a revision has been applied; the operations'
``recording()`` hands over each ``OpResult`` as it is published; and the migration
connection's ``commit`` and ``begin`` events say whether a revision's commit was under way.
Together they give timestamped progress lines, seconds and rows per second per operation,
and, when something fails, which revision was running and whether it was committing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from alembic.runtime.migration import MigrationInfo, MigrationStep
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, event

from toolkit.commands.server import Progress, silent
from toolkit.errors import UsageError
from toolkit.migrate import Project
from toolkit.ops.results import OpResult, recording
from toolkit.revision_events import watching_versions


@dataclass(frozen=True)
class Step:
    """One revision Alembic runs: ``upgrade a1 -> b2``."""

    direction: str
    source: tuple[str, ...]
    destination: tuple[str, ...]
    message: str

    @classmethod
    def planned(cls, step: MigrationStep) -> Step:
        """A step of Alembic's plan."""
        doc = str(step.doc or "").strip().splitlines()
        return cls(
            direction="upgrade" if step.is_upgrade else "downgrade",
            source=tuple(step.from_revisions_no_deps),
            destination=tuple(step.to_revisions_no_deps),
            message=doc[0] if doc else "",
        )

    @classmethod
    def applied(cls, info: MigrationInfo) -> Step:
        """A step as ``on_version_apply`` reports it."""
        script = info.up_revision
        doc = str(getattr(script, "doc", "") or "").strip().splitlines()
        return cls(
            direction="upgrade" if info.is_upgrade else "downgrade",
            source=tuple(info.source_revision_ids),
            destination=tuple(info.destination_revision_ids),
            message=doc[0] if doc else "",
        )

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


def plan(project: Project, direction: str, revision: str, current: Sequence[str]) -> list[Step]:
    """The steps Alembic runs from ``current`` to ``revision``, in its order.

    The same list ``alembic.command.upgrade``/``downgrade`` hand to the migration context.
    """
    script = project.script()
    heads = tuple(current)
    try:
        if direction == "upgrade":
            scripts = list(script.iterate_revisions(revision, heads, implicit_base=True))
            steps = [
                MigrationStep.upgrade_from_script(script.revision_map, s) for s in reversed(scripts)
            ]
        else:
            scripts = list(script.iterate_revisions(heads, revision, select_for_downgrade=True))
            steps = [MigrationStep.downgrade_from_script(script.revision_map, s) for s in scripts]
    except (CommandError, RevisionError) as exc:
        raise UsageError(f"{project.label}: {exc}") from None
    return [Step.planned(s) for s in steps]


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
    """What a run did so far, told by Alembic, the operations and the connection."""

    plan: tuple[Step, ...] = ()
    progress: Progress = silent
    started: float = field(default_factory=time.perf_counter)
    #: The steps ``on_version_apply`` reported, in order.
    applied: list[Step] = field(default_factory=list)
    #: ``env.py`` said it passes ``on_version_apply``: every applied step will be reported.
    wired: bool = False
    #: Applied steps whose transaction is not known to have committed.
    uncommitted: list[Step] = field(default_factory=list)
    #: A commit was issued and has not been seen to return.
    committing: bool = False
    _finished: list[TimedResult] = field(default_factory=list)
    #: Results of the step under way (its revision is known once it is applied).
    _pending: list[tuple[OpResult, float]] = field(default_factory=list)
    _last_event: float = 0.0

    def __post_init__(self) -> None:
        self._last_event = self.started

    @property
    def running(self) -> Step | None:
        """The revision under way (or being committed) now, when it is known."""
        if self.committing and self.uncommitted:
            return self.uncommitted[-1]
        if not (self.wired or self.applied):
            return None
        done = len(self.applied)
        return self.plan[done] if done < len(self.plan) else None

    @property
    def last_step(self) -> Step | None:
        """The revision under way, else the last one applied."""
        return self.running or (self.applied[-1] if self.applied else None)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def operations(self) -> tuple[TimedResult, ...]:
        """Every published result, in order, with its revision and seconds."""
        step = self.running
        revision = step.revision if step is not None else None
        return (*self._finished, *(TimedResult(r, revision, s) for r, s in self._pending))

    # Events -----------------------------------------------------------------------------

    def configured(self) -> None:
        self.wired = True
        if self.plan:
            self._say(self.plan[0].describe())

    def applied_step(self, info: MigrationInfo) -> None:
        step = Step.applied(info)
        done = len(self.applied)
        expected = self.plan[done] if done < len(self.plan) else None
        if expected is None or expected.revision != step.revision:
            self.plan = ()  # Alembic took another way than planned: name only what it says
        elif not self.wired and done == 0:
            self._say(step.describe())  # a team's env.py without announce_configured()
        self.applied.append(step)
        self.uncommitted.append(step)
        self._finished += [TimedResult(r, step.revision, s) for r, s in self._pending]
        self._pending.clear()
        following = self.running
        if following is not None:
            self._say(following.describe())

    def published(self, result: OpResult) -> None:
        seconds = self._say(f"  {result.summary()}", timed=True)
        self._pending.append((result, seconds))

    def commit_issued(self, conn: Connection) -> None:
        del conn
        self.committing = True

    def transaction_begun(self, conn: Connection) -> None:
        del conn
        if self.committing:  # the previous commit returned
            self.committing = False
            self.uncommitted.clear()

    def _say(self, text: str, *, timed: bool = False) -> float:
        now = time.perf_counter()
        seconds = now - self._last_event
        suffix = f" ({seconds:.2f}s)" if timed else ""
        self.progress(f"[{now - self.started:8.2f}s] {text}{suffix}")
        self._last_event = now
        return seconds


class _VersionWatcher:
    """Forwards ``toolkit.revision_events`` to a ``Timeline``."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline

    def configured(self) -> None:
        self.timeline.configured()

    def applied(self, step: MigrationInfo) -> None:
        self.timeline.applied_step(step)


@contextmanager
def watching(
    progress: Progress,
    steps: Sequence[Step] = (),
    connection: Connection | None = None,
) -> Iterator[Timeline]:
    """A ``Timeline`` of the migration run in the block, sending progress lines as it goes.

    ``steps`` is the run's plan; ``connection`` the migration connection, when Alembic
    runs on it (its commits are then followed).
    """
    timeline = Timeline(plan=tuple(steps), progress=progress)
    listeners: list[tuple[str, Any]] = []
    if connection is not None:
        listeners = [("commit", timeline.commit_issued), ("begin", timeline.transaction_begun)]
    for name, fn in listeners:
        event.listen(connection, name, fn)
    try:
        with recording(timeline.published), watching_versions(_VersionWatcher(timeline)):
            yield timeline
    finally:
        for name, fn in listeners:
            event.remove(connection, name, fn)


def _ids(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) or "base"
