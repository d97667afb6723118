"""Upgrade and downgrade a real database safely; show where it is and what would run.

``upgrade``/``downgrade`` hold the migration lock for the whole run, run on a connection
with ``lock_timeout`` and ``statement_timeout`` set, one transaction per revision (the
bundled ``env.py`` does that), and turn a database error into one message that says which
revision failed and which revision the database is left at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError

from toolkit import migrate
from toolkit.commands.locking import migration_lock
from toolkit.commands.revision_options import explain_refusal, warn_unread, with_x
from toolkit.commands.server import (
    Progress,
    open_connection,
    open_server,
    session_url,
    silent,
    timeouts_sql,
)
from toolkit.commands.settings import RunSettings, Target, resolve_target
from toolkit.commands.watch import Step, TimedResult, Timeline, watching
from toolkit.errors import DataRefusedError, LockTimeoutError, MigrationFailedError, ToolkitError
from toolkit.migrate import Project, RevisionInfo
from toolkit.ops.results import OpResult, recording
from toolkit.postgres.url import database_name, scrub

#: SQLSTATEs of a lock_timeout and of a statement_timeout (or a cancel).
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"

MigrateFn = Callable[..., list[OpResult]]


@dataclass(frozen=True)
class MigrationReport:
    """What an upgrade or downgrade did."""

    direction: str
    target: str
    server: str
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
    server: str
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
    return _migrate("upgrade", migrate.upgrade, settings, revision, dict(x or {}), progress)


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
    return _migrate("downgrade", migrate.downgrade, settings, revision, dict(x or {}), progress)


def _migrate(
    direction: str,
    run: MigrateFn,
    settings: RunSettings,
    revision: str,
    x: dict[str, str],
    progress: Progress,
) -> MigrationReport:
    target = resolve_target(settings)
    resolved = migrate.resolve_revision(target.project, revision)
    goal = destination(target.project, resolved)
    warn_unread(target.project, x, progress)
    with open_server(settings, progress) as server:
        database = database_name(server.url)
        with migration_lock(
            server.url, timeout_s=settings.lock_timeout_s, purpose=direction, progress=progress
        ):
            before = migrate.current(target.project, server.url)
            progress(
                f"{direction} {target.label} on database {database!r}: "
                f"{revision_ids(before)} -> {goal}{with_x(x)}"
            )
            url = session_url(server.url, settings, purpose=direction)
            with (
                open_connection(url) as conn,
                watching(progress) as timeline,
                recording() as results,
            ):
                try:
                    run(target.project, url, resolved, connection=conn, x=x)
                except DBAPIError as exc:
                    raise failed_revision(
                        exc, timeline, target.project, server.url, settings
                    ) from None
                except DataRefusedError as exc:
                    _say_where(progress, timeline, target.project, server.url)
                    raise explain_refusal(exc, target.project, timeline.last_step) from None
                except ToolkitError:
                    _say_where(progress, timeline, target.project, server.url)
                    raise
            after = migrate.current(target.project, server.url)
    return MigrationReport(
        direction=direction,
        target=target.label,
        server=server.describe(),
        database=database,
        revision=goal,
        before=before,
        after=after,
        operations=timeline.timed(results),
        seconds=timeline.elapsed(),
        x=x,
    )


def destination(project: Project, revision: str) -> str:
    """A resolved ``revision`` for people: ``head``/``heads`` spelled out as the head id(s)."""
    if revision in ("head", "heads"):
        return ", ".join(project.script().get_heads())
    return revision


def failed_revision(
    exc: DBAPIError, timeline: Timeline, project: Project, url: str, settings: RunSettings
) -> ToolkitError:
    """The toolkit error for a database error raised while a revision ran."""
    step = timeline.last_step
    where = step.name if step else "the migration"
    detail = scrub(database_message(exc), url)
    now = revision_ids(migrate.current(project, url))
    left = f"the database is at {now} (that revision's transaction was rolled back)"
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate == LOCK_NOT_AVAILABLE:
        return LockTimeoutError(
            f"{where}: a table stayed locked by another session for longer than "
            f"--lock-timeout {settings.lock_timeout_s:g}s ({detail}); {left}"
        )
    if sqlstate == QUERY_CANCELED:
        return MigrationFailedError(
            f"{where}: cancelled after --statement-timeout {settings.statement_timeout_s:g}s "
            f"({detail}); {left}"
        )
    return MigrationFailedError(f"{where} failed: {detail}; {left}")


def database_message(exc: DBAPIError) -> str:
    """PostgreSQL's own message for ``exc`` on one line, without SQLAlchemy's decorations."""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    text = str(primary) if primary else str(exc.orig).strip().splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{text} ({detail})" if detail else text


def _say_where(progress: Progress, timeline: Timeline, project: Project, url: str) -> None:
    step: Step | None = timeline.last_step
    if step is not None:
        now = revision_ids(migrate.current(project, url))
        progress(f"{step.name} stopped; the database is at {now}")


def current(settings: RunSettings, *, progress: Progress = silent) -> CurrentReport:
    """The revision(s) the database is at, and the project's heads."""
    target = resolve_target(settings)
    heads = tuple(target.project.script().get_heads())
    with open_server(settings, progress) as server:
        revisions = migrate.current(target.project, server.url)
    return CurrentReport(
        target=target.label,
        server=server.describe(),
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
    options = dict(x or {})
    warn_unread(project, options, progress)
    return timeouts_sql(settings) + migrate.offline_sql(project, span, x=options)


def scenario_labels(target: Target) -> dict[str, str]:
    """``{revision: "before" | "after"}`` for a bundled scenario, empty otherwise."""
    if target.scenario is None:
        return {}
    return {target.scenario.before: "before", target.scenario.after: "after"}


def revision_ids(revisions: Sequence[str]) -> str:
    """``a1, b2``, or ``base`` for a database no revision ran on."""
    return ", ".join(revisions) or "base"
