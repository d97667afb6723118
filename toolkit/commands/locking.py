"""The migration lock: a PostgreSQL advisory lock, so two runs never migrate one database at once.

Held on a session of its own for the whole run (the migration's transactions come and go,
the lock stays). Advisory locks are per database, so runs on other databases of the same
server do not wait for each other. Taken with ``pg_try_advisory_lock`` in a polling loop
rather than ``pg_advisory_lock`` so that the wait has a deadline and an error that says
who holds the lock.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Connection

from toolkit.commands.server import APPLICATION_NAME, Progress, silent
from toolkit.errors import LockTimeoutError
from toolkit.postgres import connect
from toolkit.postgres.url import database_name

#: Every lossless run contends for this one key (a stable hash, not a magic number).
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"lossless.migration-lock").digest()[:8], "big", signed=True
)
_POLL_S = 0.1

_HOLDER_SQL = """
SELECT l.pid, coalesce(a.application_name, ''),
       to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), coalesce(a.state, ''),
       to_char(coalesce(a.state_change, a.query_start), 'HH24:MI:SS'),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 60)
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1
"""


#: ``_HOLDER_SQL`` for a SQLAlchemy connection (named parameters).
_HOLDER_SQL_NAMED = _HOLDER_SQL.replace(
    "l.classid::bigint = %s AND l.objid::bigint = %s",
    "l.classid::bigint = %(high)s AND l.objid::bigint = %(low)s",
)


def lock_key_parts(key: int = MIGRATION_LOCK_KEY) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: (high 32 bits, low 32 bits), unsigned."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


@contextmanager
def migration_lock(
    url: str,
    *,
    timeout_s: float,
    purpose: str,
    progress: Progress = silent,
) -> Iterator[None]:
    """Hold the migration lock on ``url``'s database for the block, on a session of its own.

    Waits up to ``timeout_s`` seconds (0: no limit) for another run to finish, then raises
    ``LockTimeoutError`` naming the session that holds it.
    """
    conn = connect(url)
    try:
        conn.execute(
            "SELECT set_config('application_name', %s, false)",
            (f"{APPLICATION_NAME} {purpose}",),
        )
        wait_for_lock(
            lambda: _try_lock(conn),
            lambda: _holder(conn),
            database=database_name(url),
            timeout_s=timeout_s,
            progress=progress,
        )
        yield
    finally:
        # Ending the session releases the lock, even after an error mid-run.
        conn.close()


def lock_on(
    conn: Connection, *, database: str, timeout_s: float, progress: Progress = silent
) -> None:
    """Take the migration lock on ``conn``, the session that migrates; it is held until
    that session ends. Waits as ``migration_lock`` does."""

    def attempt() -> bool:
        taken = conn.exec_driver_sql(
            "SELECT pg_try_advisory_lock(%(key)s)", {"key": MIGRATION_LOCK_KEY}
        ).scalar()
        conn.commit()  # a session lock: it outlives this transaction
        return bool(taken)

    def holder() -> str:
        row = conn.exec_driver_sql(
            _HOLDER_SQL_NAMED, dict(zip(("high", "low"), lock_key_parts(), strict=True))
        ).first()
        conn.commit()
        return _describe_holder(tuple(row) if row is not None else None)

    wait_for_lock(attempt, holder, database=database, timeout_s=timeout_s, progress=progress)
    # PostgreSQL 14+: a session whose client died stops within a second, even mid-statement,
    # rather than at its next result (and the lock goes with it).
    if conn.exec_driver_sql("SHOW server_version_num").scalar_one() >= "140000":
        conn.exec_driver_sql("SET client_connection_check_interval = '1s'")
    conn.commit()


def wait_for_lock(
    attempt: Callable[[], bool],
    holder: Callable[[], str],
    *,
    database: str,
    timeout_s: float,
    progress: Progress,
) -> None:
    """Poll ``attempt`` until it takes the lock; after ``timeout_s`` (0: never) give up
    with ``LockTimeoutError`` naming the holder."""
    deadline = time.monotonic() + timeout_s
    waited = False
    while not attempt():
        if not waited:
            progress(f"waiting for the migration lock, held by {holder()}")
            waited = True
        if timeout_s and time.monotonic() >= deadline:
            raise LockTimeoutError(
                f"another run holds the migration lock on database {database!r} "
                f"({holder()}); gave up after {timeout_s:g}s: try again later or raise "
                "--lock-timeout"
            )
        time.sleep(_POLL_S)
    if waited:
        progress("migration lock acquired")


def _try_lock(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def _holder(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    return _describe_holder(conn.execute(_HOLDER_SQL, lock_key_parts()).fetchone())


def _describe_holder(row: tuple[object, ...] | None) -> str:
    if row is None:
        return "a session that just let go"
    pid, application, started, state, since, query = row
    parts = [f"pid {pid}"]
    if application:
        parts.append(str(application))
    if started:
        parts.append(f"session started {started}")
    if state == "active":
        parts.append(f"still working (since {since}): {query!r}")
    elif state:
        parts.append(f"{state} since {since}")
    return ", ".join(parts)
