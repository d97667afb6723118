"""Watch the migration session's table locks from a second session while it runs.

A thread samples, every ``interval_s``, what the migration backend holds (``pg_locks``)
and who blocks it (``pg_blocking_pids``). From that:

- a failed lock wait names the sessions in the way: pid, ``application_name``, and the
  start of their query;
- preflight reports, per table, the lock mode each step took and how long it was held;
- a lost migration session is seen (the backend is gone from ``pg_stat_activity``).

Sampling shows a lock held for less than ``interval_s`` only by chance, and times are
accurate to about ``interval_s``: the held times are measurements, not declarations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import Connection

from toolkit.postgres import connect
from toolkit.sql.lock_plan import LOCK_MODES

#: The table lock modes as ``pg_locks`` spells them (``AccessExclusiveLock``), weakest first.
PG_LOCK_MODES = tuple(m.title().replace(" ", "") + "Lock" for m in LOCK_MODES)

_LOCKS_SQL = """
SELECT n.nspname, c.relname, l.mode, l.granted
FROM pg_locks AS l
JOIN pg_class AS c ON c.oid = l.relation
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.pid = %s AND l.locktype = 'relation' AND c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""
_BLOCKERS_SQL = """
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       to_char(a.query_start, 'HH24:MI:SS'), left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80)
FROM pg_stat_activity AS a
WHERE a.pid = ANY(pg_blocking_pids(%s))
ORDER BY a.pid
"""
_ALIVE_SQL = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"


def _rank(lock: HeldLock) -> int:
    return PG_LOCK_MODES.index(lock.mode)


def sql_mode(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE`` (as ``LOCK TABLE`` spells it)."""
    return LOCK_MODES[PG_LOCK_MODES.index(mode)]


@dataclass(frozen=True)
class Blocker:
    """A session the migration waited for."""

    pid: int
    application_name: str
    state: str
    query_start: str
    query: str

    def describe(self) -> str:
        name = f" ({self.application_name})" if self.application_name else ""
        since = f" since {self.query_start}" if self.query_start else ""
        return f"pid {self.pid}{name}, {self.state or 'unknown state'}{since}: {self.query!r}"


@dataclass
class HeldLock:
    """A table lock the migration session held: when first and last seen, and in which step."""

    schema: str
    table: str
    mode: str
    #: The revision step running when the lock was first seen.
    step: str | None
    #: How many operations had reported when it was first seen (the next one took it).
    operations_before: int
    first_s: float
    last_s: float
    #: How long the lock was seen requested but not granted (blocked by another session).
    waited_s: float = 0.0
    wait_started_s: float | None = None

    @property
    def held_s(self) -> float:
        return self.last_s - self.first_s


@dataclass
class LockSamples:
    """Everything the watcher saw."""

    held: dict[tuple[str, str, str], HeldLock] = field(default_factory=dict)
    blockers: tuple[Blocker, ...] = ()
    #: The last table lock seen requested and not granted.
    waiting: HeldLock | None = None
    lost: bool = False
    samples: int = 0
    #: Table locks (schema, table, mode) left out: held by the toolkit before the run.
    ignored: frozenset[tuple[str, str, str]] = frozenset()

    def escalations(self) -> list[HeldLock]:
        """Per table (in (schema, table) order), each mode that was stronger than every
        mode held on it before: what a reader of the table felt, step by step."""
        shown: list[HeldLock] = []
        by_table: dict[tuple[str, str], list[HeldLock]] = {}
        for lock in self.held.values():
            by_table.setdefault((lock.schema, lock.table), []).append(lock)
        for key in sorted(by_table):
            strongest = -1
            for lock in sorted(by_table[key], key=lambda lk: (lk.first_s, -_rank(lk))):
                if _rank(lock) > strongest:
                    shown.append(lock)
                    strongest = _rank(lock)
        return shown


class LockWatcher(threading.Thread):
    """Samples the locks of backend ``pid`` until stopped."""

    def __init__(
        self,
        url: str,
        pid: int,
        *,
        # () -> (the revision step running, how many operations have reported so far)
        step: Callable[[], tuple[str | None, int]] = lambda: (None, 0),
        interval_s: float = 0.05,
    ) -> None:
        super().__init__(name="lossless-lock-watch", daemon=True)
        self.url, self.pid, self.step, self.interval_s = url, pid, step, interval_s
        self.samples = LockSamples()
        self._stop_event = threading.Event()
        self._started_at = time.perf_counter()
        self._reported = 0
        self.error: str | None = None

    def stop(self) -> LockSamples:
        self._stop_event.set()
        self.join(timeout=10)
        return self.samples

    def ignore_held_now(self, conn: Connection, pid: int) -> None:
        """Leave out the table locks backend ``pid`` holds now, on ``conn`` (its own
        session): preflight's snapshot reads every table before the revisions run, and
        those ACCESS SHARE locks are the toolkit's, not the revisions'."""
        rows = conn.exec_driver_sql(_LOCKS_SQL, (pid,)).all()
        ignored = frozenset((str(r[0]), str(r[1]), str(r[2])) for r in rows if r[3])
        self.samples.ignored = ignored
        for key in ignored:
            self.samples.held.pop(key, None)

    def run(self) -> None:
        try:
            with connect(self.url) as conn:
                conn.execute("SET statement_timeout = '5s'")
                conn.execute("SET application_name = 'lossless lock watch'")
                while not self._stop_event.is_set():
                    self._sample(conn)
                    self._stop_event.wait(self.interval_s)
        except (psycopg.Error, OSError) as exc:
            self.error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)

    def _sample(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        now = time.perf_counter() - self._started_at
        if conn.execute(_ALIVE_SQL, (self.pid,)).fetchone() is None:
            self.samples.lost = True
            return
        step, now_reported = self.step()
        # Taken since the previous sample: by the operation under way then (an operation
        # that took it and reported in between is the earlier one).
        reported, self._reported = self._reported, now_reported
        for schema, table, mode, granted in conn.execute(_LOCKS_SQL, (self.pid,)):
            key = (str(schema), str(table), str(mode))
            if key in self.samples.ignored:
                continue
            lock = self.samples.held.get(key)
            if lock is None:
                lock = HeldLock(key[0], key[1], key[2], step, reported, now, now)
                self.samples.held[key] = lock
            if granted:
                lock.last_s = now
                continue
            # Still queued: the hold starts when it is granted.
            self.samples.waiting = lock
            if lock.wait_started_s is None:
                lock.wait_started_s = now
            lock.waited_s = now - lock.wait_started_s
            lock.first_s = lock.last_s = now
        blockers = tuple(
            Blocker(int(pid), str(app), str(state), str(start or ""), str(query or ""))  # type: ignore[call-overload]
            for pid, app, state, start, query in conn.execute(_BLOCKERS_SQL, (self.pid,))
        )
        if blockers:
            self.samples.blockers = blockers
        self.samples.samples += 1


def backend_pid(conn: Connection) -> int:
    """The server process of ``conn`` (asked before the run's transactions begin)."""
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    conn.commit()
    return int(pid)  # type: ignore[arg-type]


def blocked_by(samples: LockSamples) -> str:
    """``waiting for ACCESS EXCLUSIVE on public.t, blocked by pid 12 (app), idle in
    transaction since 10:01:02: 'SELECT ...'``: what the watcher saw last."""
    waiting = samples.waiting
    wanted = (
        f"waiting for {sql_mode(waiting.mode)} on {waiting.schema}.{waiting.table}, "
        if waiting is not None
        else ""
    )
    if not samples.blockers:
        return wanted + "no blocking session was seen (it let go, or waited less than a sample)"
    return wanted + "blocked by " + "; ".join(b.describe() for b in samples.blockers)


@contextmanager
def watching_locks(
    url: str, pid: int, *, step: Callable[[], tuple[str | None, int]] = lambda: (None, 0)
) -> Iterator[LockWatcher]:
    """Run a ``LockWatcher`` on backend ``pid`` for the block."""
    watcher = LockWatcher(url, pid, step=step)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()
