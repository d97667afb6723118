"""One locked step: the skeleton shared by every command that runs revisions.

``upgrade``, ``downgrade`` and ``preflight`` all resolve the revision, take the migration
lock, measure where the database is, plan Alembic's steps, open the migration connection
with the run's ``lock_timeout`` and ``statement_timeout``, run the revisions (one
transaction per revision; a preflight runs them inside one transaction it rolls back),
follow them (``toolkit.commands.watch``), and turn what went wrong into one message that
names the revision and says where the database is, as measured afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from toolkit import migrate
from toolkit.commands.lock_watch import (
    HeldLock,
    LockSamples,
    backend_pid,
    blocked_by,
    watching_locks,
)
from toolkit.commands.locking import lock_on
from toolkit.commands.revision_options import explain_refusal, warn_unread, with_x
from toolkit.commands.server import (
    Progress,
    ServerInfo,
    open_connection,
    open_server,
    session_url,
)
from toolkit.commands.settings import RunSettings, Target, resolve_target
from toolkit.commands.watch import Step, TimedResult, Timeline, plan, watching
from toolkit.errors import (
    ConnectionLostError,
    DataRefusedError,
    InterruptedRunError,
    LockTimeoutError,
    MigrationFailedError,
    ToolkitError,
    UsageError,
    VerificationError,
)
from toolkit.lock_retries import with_lock_retries
from toolkit.migrate import Project, VersionTable
from toolkit.ops.online import progress_lines, running
from toolkit.postgres.url import database_name, scrub
from toolkit.roundtrip.dropped import (
    DroppedData,
    mark_start,
    measure_dropped,
    rollback_differences,
)
from toolkit.sql.lock_plan import PRELUDE_MARK

Direction = Literal["upgrade", "downgrade"]

#: SQLSTATEs of a lock_timeout and of a statement_timeout (or a cancel).
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
DEADLOCK_DETECTED = "40P01"


@dataclass(frozen=True)
class StepRun:
    """What a locked step did, or got to before a refusal or a failure (``rollback``)."""

    target: Target
    server: ServerInfo
    database: str
    direction: Direction
    #: The revision asked for, ``head``/``heads`` spelled out as the head id(s).
    goal: str
    before: tuple[str, ...]
    #: Where the database is afterwards (a rolled-back run: where it got to before that).
    after: tuple[str, ...]
    operations: tuple[TimedResult, ...]
    seconds: float
    x: Mapping[str, str] = field(default_factory=dict)
    #: Only for a rolled-back run (a real run raises them): a refusal, a revision's failure.
    refused: DataRefusedError | None = None
    failure: str | None = None
    #: Only for a rolled-back run: data the step drops, measured by snapshots.
    dropped: tuple[DroppedData, ...] = ()
    #: The table locks the migration session was seen taking, per table each stronger mode.
    locks: tuple[HeldLock, ...] = ()


def run_step(
    settings: RunSettings,
    revision: str,
    *,
    x: Mapping[str, str],
    purpose: str,
    progress: Progress,
    direction: Direction | None = None,
    rollback: bool = False,
) -> StepRun:
    """Run the project's revisions to ``revision`` under the migration lock.

    ``direction`` None: up or down, whichever leads from where the database is to
    ``revision``. ``rollback``: inside one transaction that is rolled back; refusals and
    revision failures are then reported in the result instead of raised. ``purpose``
    names the run in ``pg_stat_activity`` and in progress lines.
    """
    target = resolve_target(settings)
    project = target.project
    resolved = migrate.resolve_revision(project, revision)
    goal = destination(project, resolved)
    options = dict(x)
    warn_unread(project, options, progress)
    with open_server(settings, progress) as server:
        database = database_name(server.url)
        url = session_url(server.url, settings, purpose=purpose)
        with interruption_reported(project, server.url) as where, open_connection(url) as conn:
            # The lock lives on the session that migrates: they end together.
            lock_on(conn, database=database, timeout_s=settings.lock_timeout_s, progress=progress)
            pid = backend_pid(conn)
            at = migrate.position(project, server.url)
            before, excluded = at.heads, at.table.excluded_tables()
            way = direction or step_direction(project, before, resolved)
            check_direction(project, way, before, resolved, revision)
            steps = plan(project, way, resolved, before)
            prefix = f"{purpose} {way}" if purpose != way else way
            suffix = " (rolled back afterwards)" if rollback else ""
            progress(
                f"{prefix} {target.label} on database {database!r}: "
                f"{revision_ids(before)} -> {goal}{with_x(options)}{suffix}"
            )
            run = migrate.upgrade if way == "upgrade" else migrate.downgrade
            # A retry must aim where the first attempt aimed, even for a relative "-1".
            aim = _absolute(resolved, steps)
            refused: DataRefusedError | None = None
            failure: str | None = None
            with (
                watching(progress, steps, conn) as timeline,
                watching_locks(server.url, pid, step=lambda: _running(timeline)) as locks,
                progress_lines(progress),
                running(way),
            ):
                where.timeline = timeline
                transaction = conn.begin() if rollback else None
                start = mark_start(conn, excluded) if rollback else None
                if start is not None:
                    locks.ignore_held_now(conn, pid)
                dropped: list[DroppedData] = []
                after = before
                try:
                    with_lock_retries(
                        lambda: run(
                            project,
                            url,
                            aim,
                            connection=conn,
                            x=options,
                            own_connections=not rollback,
                        ),
                        retries=0 if rollback else settings.lock_retries,
                        lock_not_available=_lock_not_available,
                        on_retry=lambda n, pause, exc: progress(
                            _retry_line(timeline, settings, locks.samples, exc, n, pause)
                        ),
                    )
                    if start is not None:
                        after = heads_on(at.table, conn)
                        dropped = measure_dropped(
                            conn, start, [t.result for t in timeline.operations()], excluded
                        )
                except DataRefusedError as exc:
                    refused = explain_refusal(exc, project, timeline.running)
                    if not rollback:
                        _say_where(progress, timeline, project, server.url)
                        raise refused from None
                    after = heads_on(at.table, conn)
                except DBAPIError as exc:
                    failure = _failed(
                        exc, timeline, project, server.url, settings, rollback, locks.samples
                    )
                except ToolkitError:
                    if not rollback:
                        _say_where(progress, timeline, project, server.url)
                    raise
                finally:
                    if transaction is not None and transaction.is_active:
                        transaction.rollback()
                changed = rollback_differences(conn, start, excluded) if start else []
            if rollback:
                _check_unchanged(project, server.url, before, progress, changed)
            else:
                after = migrate.current(project, server.url)
    return StepRun(
        target=target,
        server=ServerInfo.of(server),
        database=database,
        direction=way,
        goal=goal,
        before=before,
        after=after,
        operations=timeline.operations(),
        seconds=timeline.elapsed(),
        x=options,
        refused=refused,
        failure=failure,
        dropped=tuple(dropped),
        locks=tuple(locks.samples.escalations()),
    )


def _absolute(resolved: str, steps: Sequence[Step]) -> str:
    """``resolved``, or for a relative ``-1``/``+2`` the revision its plan ends at."""
    if resolved[:1] not in ("-", "+") or not steps:
        return resolved
    return revision_ids(steps[-1].destination)


def _running(timeline: Timeline) -> tuple[str | None, int]:
    step = timeline.running
    return (step.name if step is not None else None), len(timeline.operations())


def _lock_not_available(exc: Exception) -> bool:
    """A lock timeout, or the revision chosen as a deadlock's victim: rolled back, retryable."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in (
        LOCK_NOT_AVAILABLE,
        DEADLOCK_DETECTED,
    )


def waited_for(error: Exception | None, settings: RunSettings) -> str:
    """How long a lock that timed out was waited for: ``--lock-timeout``, or for a lock of
    the lock prelude (``toolkit.ops.lock_prelude``) its shorter budget."""
    statement = str(getattr(error, "statement", "") or "")
    timeout = f"--lock-timeout {settings.lock_timeout_s:g}s"
    if PRELUDE_MARK in statement:
        at_most = f", at most {timeout}" if settings.lock_timeout_s else ""
        return f"the lock prelude's budget (half of deadlock_timeout{at_most})"
    return timeout


def _retry_line(
    timeline: Timeline,
    settings: RunSettings,
    samples: LockSamples,
    error: Exception,
    retry: int,
    pause: float,
) -> str:
    step = timeline.running
    where = step.name if step is not None else "the migration"
    deadlock = getattr(getattr(error, "orig", None), "sqlstate", None) == DEADLOCK_DETECTED
    reason = (
        "deadlock with another session (this revision was the one aborted)"
        if deadlock
        else f"a table stayed locked for longer than {waited_for(error, settings)}"
        f" ({blocked_by(samples)})"
    )
    return (
        f"{where}: {reason}; the revision was rolled back; retry {retry} of "
        f"{settings.lock_retries} in {pause:.1f}s"
    )


def destination(project: Project, revision: str) -> str:
    """A resolved ``revision`` for people: ``head``/``heads`` spelled out as the head id(s)."""
    if revision in ("head", "heads"):
        return ", ".join(project.script().get_heads())
    return revision


def revision_ids(revisions: Sequence[str]) -> str:
    """``a1, b2``, or ``base`` for a database no revision ran on."""
    return ", ".join(revisions) or "base"


def heads_on(table: VersionTable, conn: Connection) -> tuple[str, ...]:
    """The revision(s) recorded on ``conn`` in the project's version table ``table``, inside
    its transaction."""
    context = MigrationContext.configure(
        conn, opts={"version_table": table.name, "version_table_schema": table.schema}
    )
    return tuple(context.get_current_heads())


def below(project: Project, current: Sequence[str]) -> set[str]:
    """The revisions strictly below ``current`` (their ancestors)."""
    if not current:
        return set()
    script = project.script()
    return {
        r.revision
        for r in script.iterate_revisions(tuple(current), "base")
        if r.revision not in current
    }


def step_direction(project: Project, current: Sequence[str], revision: str) -> Direction:
    """``downgrade`` when ``revision`` lies below where the database is, else ``upgrade``."""
    if revision == "base" or revision.startswith("-"):
        return "downgrade"
    if revision in ("head", "heads") or revision.startswith("+") or not current:
        return "upgrade"
    return "downgrade" if revision in below(project, current) else "upgrade"


def check_direction(
    project: Project, direction: Direction, current: Sequence[str], resolved: str, asked: str
) -> None:
    """``UsageError`` when ``resolved`` lies the other way: each command goes one way only."""
    if resolved in current or (resolved == "base" and not current):
        return  # already there: nothing to do, either way
    way = step_direction(project, current, resolved)
    if way == direction:
        return
    at = revision_ids(current)
    if direction == "upgrade":
        raise UsageError(
            f"{asked} is below the revision the database is at ({at}): upgrade only goes "
            f"up; to go down, use `lossless downgrade {asked}`"
        )
    raise UsageError(
        f"{asked} is not below the revision the database is at ({at}): downgrade only goes "
        f"down; to go up, use `lossless upgrade {asked}`"
    )


@dataclass
class _Where:
    """What an interruption report needs to know about the run under way."""

    timeline: Timeline | None = None


@contextmanager
def interruption_reported(project: Project, url: str) -> Iterator[_Where]:
    """Turn Ctrl-C inside the block into ``InterruptedRunError`` saying where the database is."""
    where = _Where()
    try:
        yield where
    except KeyboardInterrupt:
        step = where.timeline.running if where.timeline is not None else None
        during = f" during {step.name}" if step is not None else ""
        now = measured(project, url)
        at = (
            f"the database is at {revision_ids(now)}"
            if now is not None
            else "the database could not be read: check with `lossless current`"
        )
        raise InterruptedRunError(f"interrupted{during}; {at}") from None


def measured(project: Project, url: str) -> tuple[str, ...] | None:
    """Where the database is, read on a new connection; None when it cannot be read."""
    try:
        return migrate.current(project, url)
    except (SQLAlchemyError, ToolkitError, OSError):
        return None


def _failed(
    exc: DBAPIError,
    timeline: Timeline,
    project: Project,
    url: str,
    settings: RunSettings,
    rollback: bool,
    samples: LockSamples,
) -> str:
    """The failure of a rolled-back run; raises the error of every other case."""
    if exc.connection_invalidated:
        raise connection_lost(exc, timeline, project, url, rollback) from None
    blockers = blocked_by(samples)
    if rollback:
        return _rolled_back_failure(exc, timeline.running, url, settings, blockers)
    raise failed_revision(exc, timeline, project, url, settings, blockers) from None


def failed_revision(
    exc: DBAPIError,
    timeline: Timeline,
    project: Project,
    url: str,
    settings: RunSettings,
    blockers: str = "",
) -> ToolkitError:
    """The toolkit error for a database error raised while a revision ran.

    ``blockers`` names the sessions the migration was seen waiting for."""
    step = timeline.running
    where = step.name if step else "the migration"
    detail = scrub(database_message(exc), url)
    now = revision_ids(migrate.current(project, url))
    left = f"the database is at {now} (that revision's transaction was rolled back)"
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate == LOCK_NOT_AVAILABLE:
        retried = f" after {settings.lock_retries} retries" if settings.lock_retries else ""
        return LockTimeoutError(
            f"{where}: a table stayed locked by another session for longer than "
            f"{waited_for(exc, settings)}{retried} ({detail}; "
            f"{scrub(blockers, url)}); {left}"
        )
    if sqlstate == QUERY_CANCELED:
        return MigrationFailedError(
            f"{where}: cancelled after --statement-timeout {settings.statement_timeout_s:g}s "
            f"({detail}); {left}"
        )
    return MigrationFailedError(f"{where} failed: {detail}; {left}")


def _rolled_back_failure(
    exc: DBAPIError, step: Step | None, url: str, settings: RunSettings, blockers: str
) -> str:
    """What a preflight reports for a database error (some errors are raised)."""
    detail = scrub(database_message(exc), url)
    if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        raise LockTimeoutError(
            f"preflight: a table stayed locked by another session for longer than "
            f"{waited_for(exc, settings)} ({detail}; {scrub(blockers, url)})"
        ) from None
    return f"{step.name} would fail: {detail}" if step else f"would fail: {detail}"


def connection_lost(
    exc: DBAPIError, timeline: Timeline, project: Project, url: str, rollback: bool
) -> ConnectionLostError:
    """The connection died under a revision: which one, what is known, how to check."""
    committing = timeline.committing and bool(timeline.uncommitted)
    step = timeline.running
    during = f"revision {step.revision} ({step.name})" if step else "the migration"
    what = "while committing" if committing else "during"
    detail = scrub(database_message(exc), url)
    now = measured(project, url)
    if rollback:
        known = "nothing was changed: a preflight never commits"
    elif committing:
        known = "it may have committed"
    else:
        known = "its transaction had not been committed, so the server rolls it back"
    if now is None:
        at = "the database could not be read afterwards"
    else:
        at = f"the database is at {revision_ids(now)}"
        if step is not None and not rollback:
            applied = (
                step.revision in now if step.direction == "upgrade" else (step.revision not in now)
            )
            at += " (it committed)" if applied else " (it did not commit)"
    return ConnectionLostError(
        f"connection lost {what} {during} ({detail}): {known}; {at}; check with `lossless current`"
    )


def database_message(exc: DBAPIError) -> str:
    """PostgreSQL's own message for ``exc`` on one line, without SQLAlchemy's decorations."""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    text = str(primary) if primary else (str(exc.orig).strip().splitlines() or [""])[0]
    detail = getattr(diag, "message_detail", None)
    return f"{text} ({detail})" if detail else text


def _say_where(progress: Progress, timeline: Timeline, project: Project, url: str) -> None:
    step = timeline.running
    if step is not None:
        now = measured(project, url)
        at = revision_ids(now) if now is not None else "a revision that could not be read"
        progress(f"{step.name} stopped; the database is at {at}")


def _check_unchanged(
    project: Project, url: str, before: tuple[str, ...], progress: Progress, changed: list[str]
) -> None:
    if changed:
        raise VerificationError(
            "preflight: after the rollback the database is not as before: " + "; ".join(changed)
        )
    now = migrate.current(project, url)
    if now != before:
        raise MigrationFailedError(
            f"the rolled-back run left the database at {revision_ids(now)} instead of "
            f"{revision_ids(before)}: the project's env.py committed on its own"
        )
    progress(f"rolled back: the database is unchanged (at {revision_ids(now)})")
