"""Preflight: run a migration step inside a transaction that is rolled back, and report.

The DBA's "what will this do to my data?": the real revisions run on the real data, the
operations count what they move, stash, collapse, restore or lose, a refusal is caught and
reported, and then everything is rolled back. The tables the step touches are locked for
the duration (as the real run would lock them), under the same ``lock_timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from toolkit import migrate
from toolkit.commands.locking import migration_lock
from toolkit.commands.migrating import (
    LOCK_NOT_AVAILABLE,
    database_message,
    destination,
    revision_ids,
)
from toolkit.commands.revision_options import explain_refusal, warn_unread, with_x
from toolkit.commands.server import (
    Progress,
    open_connection,
    open_server,
    session_url,
    silent,
)
from toolkit.commands.settings import RunSettings, resolve_target
from toolkit.commands.watch import Step, TimedResult, watching
from toolkit.errors import DataRefusedError, LockTimeoutError, UsageError
from toolkit.migrate import Project
from toolkit.ops.results import recording
from toolkit.postgres.url import database_name, scrub

# The URL Alembic is given during a preflight: an env.py that ignores the connection we
# pass and opens its own would commit for real, so it must fail to connect instead.
_NO_SUCH_SOCKET_DIR = "lossless-preflight-runs-on-the-given-connection-only"
_UNREACHABLE_URL = f"postgresql://preflight@/preflight?host=/{_NO_SUCH_SOCKET_DIR}"


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
    server: str
    database: str
    revision: str
    before: tuple[str, ...]
    #: Where the step got to before the rollback (the target revision when it succeeded).
    reached: tuple[str, ...]
    operations: tuple[TimedResult, ...]
    refused: Refusal | None
    failure: str | None
    seconds: float
    #: The ``-x NAME=VALUE`` options the revisions were given.
    x: Mapping[str, str] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return sum(t.result.lost for t in self.operations)

    @property
    def ok(self) -> bool:
        """True when the step would succeed and lose nothing."""
        return self.refused is None and self.failure is None and self.lost == 0


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
    options = dict(x or {})
    target = resolve_target(settings)
    resolved = migrate.resolve_revision(target.project, revision)
    goal = destination(target.project, resolved)
    warn_unread(target.project, options, progress)
    with open_server(settings, progress) as server:
        database = database_name(server.url)
        with migration_lock(
            server.url, timeout_s=settings.lock_timeout_s, purpose="preflight", progress=progress
        ):
            before = migrate.current(target.project, server.url)
            direction = step_direction(target.project, before, resolved)
            run = migrate.upgrade if direction == "upgrade" else migrate.downgrade
            progress(
                f"preflight {direction} {target.label} on database {database!r}: "
                f"{revision_ids(before)} -> {goal}{with_x(options)} (rolled back afterwards)"
            )
            url = session_url(server.url, settings, purpose="preflight")
            refused: Refusal | None = None
            failure: str | None = None
            with (
                open_connection(url) as conn,
                watching(progress) as timeline,
                recording() as results,
            ):
                transaction = conn.begin()
                reached = before
                try:
                    run(target.project, _UNREACHABLE_URL, resolved, connection=conn, x=options)
                    reached = _heads(conn)
                except DataRefusedError as exc:
                    refused = _refusal(explain_refusal(exc, target.project, timeline.last_step))
                    reached = _heads(conn)
                except DBAPIError as exc:
                    failure = _failure(exc, timeline.last_step, server.url, settings)
                finally:
                    transaction.rollback()
            progress("rolled back: the database is unchanged")
    return PreflightReport(
        direction=direction,
        target=target.label,
        server=server.describe(),
        database=database,
        revision=goal,
        before=before,
        reached=reached,
        operations=timeline.timed(results),
        refused=refused,
        failure=failure,
        seconds=timeline.elapsed(),
        x=options,
    )


def step_direction(project: Project, current: tuple[str, ...], revision: str) -> str:
    """``downgrade`` when ``revision`` lies below where the database is, else ``upgrade``."""
    if revision == "base" or revision.startswith("-"):
        return "downgrade"
    if revision in ("head", "heads") or revision.startswith("+") or not current:
        return "upgrade"
    script = project.script()
    below = {
        r.revision for r in script.iterate_revisions(current, "base") if r.revision not in current
    }
    return "downgrade" if revision in below else "upgrade"


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


def _failure(exc: DBAPIError, step: Step | None, url: str, settings: RunSettings) -> str:
    """What to report for a database error during the step (some errors are raised)."""
    if _NO_SUCH_SOCKET_DIR in str(exc):
        raise UsageError(
            "preflight needs the project's env.py to run on the connection it is given "
            "(config.attributes['connection']), as toolkit.alembic_env.run_migrations() does; "
            "this one opens its own, which would commit"
        ) from None
    detail = scrub(database_message(exc), url)
    if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        raise LockTimeoutError(
            f"preflight: a table stayed locked by another session for longer than "
            f"--lock-timeout {settings.lock_timeout_s:g}s ({detail})"
        ) from None
    return f"{step.name} would fail: {detail}" if step else f"would fail: {detail}"


def _heads(conn: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(conn).get_current_heads())
