"""Upgrade and downgrade a real database safely; show where it is and what would run.

``upgrade``/``downgrade`` are locked steps (``toolkit.commands.locked_step``): under the
migration lock, on a connection with ``lock_timeout`` and ``statement_timeout`` set, one
transaction per revision (the bundled ``env.py`` does that), and a database error becomes
one message that says which revision failed and which revision the database is left at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from toolkit import migrate
from toolkit.commands.locked_step import Direction, destination, revision_ids, run_step
from toolkit.commands.online_cleanup import undo_unfinished_upgrade
from toolkit.commands.revision_options import warn_unread
from toolkit.commands.server import Progress, ServerInfo, open_server, silent, timeouts_sql
from toolkit.commands.settings import RunSettings, Target, resolve_target
from toolkit.commands.watch import TimedResult
from toolkit.errors import UsageError
from toolkit.migrate import Project, RevisionInfo
from toolkit.postgres.url import database_name

__all__ = [
    "CurrentReport",
    "HistoryReport",
    "MigrationReport",
    "current",
    "destination",
    "downgrade",
    "history",
    "offline_sql",
    "revision_ids",
    "upgrade",
]


@dataclass(frozen=True)
class MigrationReport:
    """What an upgrade or downgrade did."""

    direction: str
    target: str
    server: ServerInfo
    database: str
    revision: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    operations: tuple[TimedResult, ...]
    seconds: float
    #: The ``-x NAME=VALUE`` options the revisions were given.
    x: Mapping[str, str] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return sum(t.result.lost for t in self.operations)


@dataclass(frozen=True)
class CurrentReport:
    """Where a database is, against the project's heads."""

    target: str
    server: ServerInfo
    database: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    labels: dict[str, str]


@dataclass(frozen=True)
class HistoryReport:
    """Every revision of the project, base first, with the heads and scenario labels."""

    target: str
    revisions: tuple[RevisionInfo, ...]
    heads: tuple[str, ...]
    labels: dict[str, str]


def upgrade(
    settings: RunSettings,
    revision: str = "heads",
    *,
    x: Mapping[str, str] | None = None,
    progress: Progress = silent,
) -> MigrationReport:
    """Upgrade the database to ``revision`` under the migration lock.

    ``x`` holds the ``-x NAME=VALUE`` options the revisions read (Alembic's ``-x``).
    """
    return _migrate("upgrade", settings, revision, dict(x or {}), progress)


def downgrade(
    settings: RunSettings,
    revision: str,
    *,
    x: Mapping[str, str] | None = None,
    progress: Progress = silent,
) -> MigrationReport:
    """Downgrade the database to ``revision`` under the migration lock.

    ``x`` holds the ``-x NAME=VALUE`` options the revisions read (Alembic's ``-x``).
    """
    return _migrate("downgrade", settings, revision, dict(x or {}), progress)


def _migrate(
    direction: Direction,
    settings: RunSettings,
    revision: str,
    x: dict[str, str],
    progress: Progress,
) -> MigrationReport:
    if direction == "downgrade" and settings.url is not None:
        _undo_unfinished_upgrade(settings, x, progress)
    run = run_step(
        settings, revision, x=x, purpose=direction, direction=direction, progress=progress
    )
    return MigrationReport(
        direction=direction,
        target=run.target.label,
        server=run.server,
        database=run.database,
        revision=run.goal,
        before=run.before,
        after=run.after,
        operations=run.operations,
        seconds=run.seconds,
        x=run.x,
    )


def _undo_unfinished_upgrade(settings: RunSettings, x: dict[str, str], progress: Progress) -> None:
    """An online upgrade that did not finish is undone before a downgrade (see
    ``toolkit.commands.online_cleanup``)."""
    project = resolve_target(settings).project

    def undo(revision: str, options: Mapping[str, str]) -> object:
        return run_step(
            settings,
            revision,
            x=options,
            purpose="clean up",
            direction="upgrade",
            progress=progress,
        )

    with open_server(settings, silent) as server:
        at = migrate.current(project, server.url)
        undo_unfinished_upgrade(project, server.url, at, x, progress, undo)


def current(settings: RunSettings, *, progress: Progress = silent) -> CurrentReport:
    """The revision(s) the database is at, and the project's heads."""
    target = resolve_target(settings)
    heads = tuple(target.project.script().get_heads())
    with open_server(settings, progress) as server:
        revisions = migrate.current(target.project, server.url)
    return CurrentReport(
        target=target.label,
        server=ServerInfo.of(server),
        database=database_name(server.url),
        current=revisions,
        heads=heads,
        labels=scenario_labels(target),
    )


def history(settings: RunSettings) -> HistoryReport:
    """The project's revisions, base first (no server needed)."""
    target = resolve_target(settings)
    return HistoryReport(
        target=target.label,
        revisions=tuple(migrate.history(target.project)),
        heads=tuple(target.project.script().get_heads()),
        labels=scenario_labels(target),
    )


def offline_sql(
    settings: RunSettings,
    span: str,
    *,
    x: Mapping[str, str] | None = None,
    progress: Progress = silent,
) -> str:
    """The SQL of ``FROM:TO`` for review, rendered without a database (with ``-x`` ``x``).

    It starts with the run's ``lock_timeout`` and ``statement_timeout``, as the real run has.
    """
    project = resolve_target(settings).project
    check_span(project, span)
    options = dict(x or {})
    warn_unread(project, options, progress)
    return timeouts_sql(settings) + migrate.offline_sql(project, span, x=options)


def check_span(project: Project, span: str) -> None:
    """``UsageError`` unless ``span`` is ``FROM:TO`` with a TO other than FROM."""
    start, colon, end = span.partition(":")
    if not colon:
        raise UsageError(f"expected FROM:TO, got {span!r}")
    if not end:
        raise UsageError(
            f"sql {span!r} has no TO revision: give FROM:TO, e.g. :head (from base) or a1:b2"
        )
    first = destination(project, migrate.resolve_revision(project, start) if start else "base")
    last = destination(project, migrate.resolve_revision(project, end))
    if first == last:
        raise UsageError(
            f"sql {span!r}: FROM and TO are the same revision, so there is no SQL to show"
        )


def scenario_labels(target: Target) -> dict[str, str]:
    """``{revision: "before" | "after"}`` for a bundled scenario, empty otherwise."""
    if target.scenario is None:
        return {}
    return {target.scenario.before: "before", target.scenario.after: "after"}
