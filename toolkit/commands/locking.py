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
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

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
       to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1
"""


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
    """Hold the migration lock on ``url``'s database for the block.

    Waits up to ``timeout_s`` seconds (0: no limit) for another run to finish, then raises
    ``LockTimeoutError`` naming the session that holds it.
    """
    conn = connect(url)
    try:
        conn.execute(
            "SELECT set_config('application_name', %s, false)",
            (f"{APPLICATION_NAME} {purpose}",),
        )
        deadline = time.monotonic() + timeout_s
        waited = False
        while not _try_lock(conn):
            if not waited:
                progress(f"waiting for the migration lock, held by {_holder(conn)}")
                waited = True
            if timeout_s and time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"another run holds the migration lock on database "
                    f"{database_name(url)!r} ({_holder(conn)}); gave up after "
                    f"{timeout_s:g}s: try again later or raise --lock-timeout"
                )
            time.sleep(_POLL_S)
        if waited:
            progress("migration lock acquired")
        yield
    finally:
        # Ending the session releases the lock, even after an error mid-run.
        conn.close()


def _try_lock(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def _holder(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute(_HOLDER_SQL, lock_key_parts()).fetchone()
    if row is None:
        return "a session that just let go"
    pid, application, started = row
    parts = [f"pid {pid}"]
    if application:
        parts.append(str(application))
    if started:
        parts.append(f"session started {started}")
    return ", ".join(parts)
