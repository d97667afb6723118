"""An application writing to the migration-014 tables while a migration runs.

Each ``Writer`` is one application connection (loopback) in a bounded loop: one short
transaction every ``pace_s`` seconds. Like the parts of an application, each connection
has its own job (``number`` modulo 4), so that one blocked table does not stop them all:

0. a new goal and a sprint pointing to it (FK sprints -> client_goals);
1. a new target with its goal and sprint (FKs to client_goals and sprints, or the link
   tables once the column is gone);
2. a new commitment with a goal, a sprint and a link to a target (FKs from commitments and
   commitment_target_links);
3. in turn, an update of one of its own seeded targets and two reads (the target, then its
   goal in the shape the database has; both by an index).

Writes follow the schema the database has: a statement that finds a column gone (or back)
is retried once in the other shape, as an application deployed for both shapes would.
Every committed write is recorded, and ``missing`` checks afterwards, in whatever shape the
database is then, that each one is still there with its values. Deadlocks (SQLSTATE 40P01)
are counted, and the longest statement (committed or not) is timed on the client.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import errors

from toolkit.postgres import connect

DEADLOCK = "40P01"
# A NOT NULL violation: the new shape's INSERT into targets, once goal_id is back.
_SHAPE_ERRORS = (errors.UndefinedColumn, errors.UndefinedTable, errors.NotNullViolation)


@dataclass(frozen=True)
class Written:
    """One committed write: a row of ``table`` and the values it must still have."""

    table: str
    id: str
    #: Column -> value: the old-shape column names (``goal_id``...) or ``title``.
    values: tuple[tuple[str, str | None], ...] = ()
    #: For a commitment: the target it was linked to.
    linked_target: str | None = None


@dataclass
class WriterStats:
    """What one application connection saw."""

    statements: int = 0
    transactions: int = 0
    deadlocks: int = 0
    shape_switches: int = 0
    longest_s: float = 0.0
    longest_sql: str = ""
    #: When the longest statement started (``time.perf_counter()``, the same clock in
    #: every thread): to tell which phase of the migration it waited on.
    longest_at: float = 0.0
    errors: list[str] = field(default_factory=list)
    written: list[Written] = field(default_factory=list)


class StopSignal(Protocol):
    """A ``threading.Event`` or a ``multiprocessing`` one."""

    def is_set(self) -> bool: ...


Job = Callable[[psycopg.Connection[tuple[object, ...]]], Written | None]


class AppWriter(threading.Thread):
    """One application connection writing until ``stop`` is set (or ``max_transactions``):
    its job is ``jobs()[number % len(jobs())]``, one transaction each turn; what a workload
    writes is up to the subclass."""

    def __init__(
        self,
        url: str,
        number: int,
        *,
        stop: StopSignal,
        pace_s: float = 0.01,
        max_transactions: int = 200_000,
    ) -> None:
        super().__init__(name=f"app-writer-{number}", daemon=True)
        self.url = url
        self.number = number
        self.stop = stop
        self.pace_s = pace_s
        self.max_transactions = max_transactions
        self.stats = WriterStats()
        self.new_shape = False
        self._turn = 0

    def jobs(self) -> list[list[Job]]:
        """Each connection's job: the transactions it takes turns at."""
        raise NotImplementedError

    def run(self) -> None:
        conn = connect(self.url, autocommit=False)
        conn.execute("SET application_name = 'bench app writer'")
        conn.commit()
        jobs = self.jobs()
        kinds = jobs[self.number % len(jobs)]
        try:
            while not self.stop.is_set() and self.stats.transactions < self.max_transactions:
                self._turn += 1
                self._transaction(conn, kinds[self._turn % len(kinds)])
                time.sleep(self.pace_s)
        finally:
            conn.close()

    # --- one transaction, with the schema-shape retry --------------------------------------

    def _transaction(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        body: Callable[[psycopg.Connection[tuple[object, ...]]], Written | None],
    ) -> None:
        for _attempt in range(2):
            try:
                written = body(conn)
                conn.commit()
            except _SHAPE_ERRORS:
                conn.rollback()
                self.new_shape = not self.new_shape
                self.stats.shape_switches += 1
                continue
            except psycopg.Error as exc:
                conn.rollback()
                if exc.sqlstate == DEADLOCK:
                    self.stats.deadlocks += 1
                else:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
                return
            self.stats.transactions += 1
            if written is not None:
                self.stats.written.append(written)
            return

    def _sql(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        sql: str,
        params: Sequence[object] | Mapping[str, object],
    ) -> list[tuple[object, ...]]:
        start = time.perf_counter()
        try:
            cursor = conn.execute(sql.encode(), params)
            return cursor.fetchall() if cursor.description else []
        finally:
            took = time.perf_counter() - start
            self.stats.statements += 1
            if took > self.stats.longest_s:
                self.stats.longest_s, self.stats.longest_sql = took, sql.split(" (")[0]
                self.stats.longest_at = start

    def _pick(self, pool: Sequence[str]) -> str:
        return pool[(self._turn * 7919 + self.number * 104729) % len(pool)]


class Writer(AppWriter):
    """An application connection of migration 014 (see the module docstring)."""

    def __init__(
        self,
        url: str,
        number: int,
        *,
        goals: Sequence[str],
        sprints: Sequence[str],
        targets: Sequence[str],
        stop: StopSignal,
        pace_s: float = 0.01,
        max_transactions: int = 200_000,
    ) -> None:
        super().__init__(url, number, stop=stop, pace_s=pace_s, max_transactions=max_transactions)
        self.goals, self.sprints, self.targets = goals, sprints, targets

    def jobs(self) -> list[list[Job]]:
        return [
            [self._goal_and_sprint],
            [self._new_target],
            [self._commitment],
            [self._update, self._read],
        ]

    # --- the application's transactions ----------------------------------------------------

    def _goal_and_sprint(self, conn: psycopg.Connection[tuple[object, ...]]) -> Written:
        goal, sprint, client = _new_id(), _new_id(), _new_id()
        self._sql(
            conn,
            "INSERT INTO client_goals (id, client_id, title) VALUES (%s, %s, %s)",
            (goal, client, "app goal"),
        )
        if self.new_shape:
            self._sql(
                conn,
                "INSERT INTO sprints (id, client_id, title) VALUES (%s, %s, %s)",
                (sprint, client, "app sprint"),
            )
            return Written("sprints", sprint)
        self._sql(
            conn,
            "INSERT INTO sprints (id, client_id, title, goal_id) VALUES (%s, %s, %s, %s)",
            (sprint, client, "app sprint", goal),
        )
        return Written("sprints", sprint, (("goal_id", goal),))

    def _new_target(self, conn: psycopg.Connection[tuple[object, ...]]) -> Written:
        target, goal, sprint = _new_id(), self._pick(self.goals), self._pick(self.sprints)
        if self.new_shape:
            self._sql(conn, "INSERT INTO targets (id, title) VALUES (%s, %s)", (target, "app"))
            self._sql(
                conn,
                "INSERT INTO target_goal_links (target_id, goal_id) VALUES (%s, %s)",
                (target, goal),
            )
            self._sql(
                conn,
                "INSERT INTO target_sprint_links (target_id, sprint_id) VALUES (%s, %s)",
                (target, sprint),
            )
        else:
            self._sql(
                conn,
                "INSERT INTO targets (id, title, goal_id, sprint_id) VALUES (%s, %s, %s, %s)",
                (target, "app", goal, sprint),
            )
        return Written("targets", target, (("goal_id", goal), ("sprint_id", sprint)))

    def _commitment(self, conn: psycopg.Connection[tuple[object, ...]]) -> Written:
        commitment, client, target = _new_id(), _new_id(), self._pick(self.targets)
        if self.new_shape:
            self._sql(
                conn,
                "INSERT INTO commitments (id, client_id, title) VALUES (%s, %s, %s)",
                (commitment, client, "app"),
            )
            values: tuple[tuple[str, str | None], ...] = (("goal_id", None), ("sprint_id", None))
        else:
            goal, sprint = self._pick(self.goals), self._pick(self.sprints)
            self._sql(
                conn,
                "INSERT INTO commitments (id, client_id, title, goal_id, sprint_id) "
                "VALUES (%s, %s, %s, %s, %s)",
                (commitment, client, "app", goal, sprint),
            )
            values = (("goal_id", goal), ("sprint_id", sprint))
        self._sql(
            conn,
            "INSERT INTO commitment_target_links (commitment_id, target_id) VALUES (%s, %s)",
            (commitment, target),
        )
        return Written("commitments", commitment, values, linked_target=target)

    def _update(self, conn: psycopg.Connection[tuple[object, ...]]) -> Written:
        # Each writer updates its own slice of the seeded targets: no lost-update races.
        own = self.targets[self.number :: 8]
        target = own[self._turn % len(own)]
        title = f"app update {self.number}/{self._turn}"
        self._sql(conn, "UPDATE targets SET title = %s WHERE id = %s", (title, target))
        return Written("targets", target, (("title", title),))

    def _read(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """A target, then its goal in the shape the database has: both by an index, as an
        application reads. (An earlier version counted a target's commitment links, on a
        column without an index: a parallel scan of the whole link table, 50-130 ms of both
        cores each turn, which slowed every phase of the migration and was each run's
        longest statement with or without it.)"""
        target = self._pick(self.targets)
        self._sql(conn, "SELECT title FROM targets WHERE id = %s", (target,))
        if self.new_shape:
            goal = "SELECT goal_id FROM target_goal_links WHERE target_id = %s"
        else:
            goal = "SELECT goal_id FROM targets WHERE id = %s"
        self._sql(conn, goal, (target,))
        return None


#: Writer processes start by ``spawn``: a forked child would share the parent's open
#: connections (and could end them when it exits).
_PROCESSES = multiprocessing.get_context("spawn")


def stop_signal() -> Any:
    """An event that ``WriterProcess`` children see set."""
    return _PROCESSES.Event()


class WriterProcess:
    """An ``AppWriter`` in a process of its own, as an application is: threads in the
    migration's own interpreter would share its GIL, and each would slow the other (the
    migration's statements and the application's timings both); ``stats`` once joined.
    ``make(stop=...)`` builds the writer in the child (a picklable callable: a module-level
    class, or a ``functools.partial`` of one)."""

    def __init__(self, make: Callable[..., AppWriter], stop: StopSignal) -> None:
        self._results: Any = _PROCESSES.Queue()
        self._process = _PROCESSES.Process(
            target=_write_in_process, args=(self._results, make, stop), daemon=True
        )
        self.stats = WriterStats()

    def start(self) -> None:
        self._process.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the writer's figures (a writer that never reports is an error)."""
        try:
            self.stats = self._results.get(timeout=timeout)
        except queue.Empty:
            self._process.kill()
            self.stats.errors.append("the writer process did not report")
        self._process.join(timeout=10)


def writer_014(
    url: str,
    number: int,
    stop: StopSignal,
    *,
    goals: Sequence[str],
    sprints: Sequence[str],
    targets: Sequence[str],
) -> WriterProcess:
    """Migration 014's ``Writer`` in a process of its own."""
    make = functools.partial(
        Writer, url, number, goals=list(goals), sprints=list(sprints), targets=list(targets)
    )
    return WriterProcess(make, stop)


def _write_in_process(results: Any, make: Callable[..., AppWriter], stop: StopSignal) -> None:
    writer = make(stop=stop)
    try:
        writer.run()
    except Exception as exc:  # reported with the figures
        writer.stats.errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        results.put(writer.stats)


def _new_id() -> str:
    return str(uuid.uuid4())


def seeded_ids(url: str, per_table: int = 2000) -> tuple[list[str], list[str], list[str]]:
    """Existing goal, sprint and target ids for the writers to reference."""
    with connect(url) as conn:
        return tuple(  # type: ignore[return-value]
            [
                str(r[0])
                for r in conn.execute(
                    f"SELECT id FROM {table} ORDER BY id LIMIT %s".encode(),  # noqa: S608
                    (per_table,),
                )
            ]
            for table in ("client_goals", "sprints", "targets")
        )


def missing(url: str, written: Sequence[Written]) -> list[str]:
    """The committed writes that are not in the database as written (empty: none lost).

    Only the last committed update of a row must show; every insert must.
    """
    final: dict[tuple[str, str, str], Written] = {}
    for write in written:
        final[(write.table, write.id, ",".join(c for c, _ in write.values))] = write
    with connect(url) as conn:
        new_shape = not conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'targets' AND column_name = 'goal_id'"
        ).fetchone()
        return [
            f"{w.table} {w.id} {dict(w.values)}"
            for w in final.values()
            if not _present(conn, w, new_shape)
        ]


def _present(conn: psycopg.Connection[tuple[object, ...]], write: Written, new_shape: bool) -> bool:
    row = conn.execute(
        f"SELECT to_jsonb(t) FROM {write.table} AS t WHERE id = %s".encode(),  # noqa: S608
        (write.id,),
    ).fetchone()
    if row is None:
        return False
    data: dict[str, object] = row[0]  # type: ignore[assignment]
    for column, value in write.values:
        if _value(conn, write, data, column, new_shape) != value:
            return False
    if write.linked_target is None:
        return True
    link = conn.execute(
        "SELECT 1 FROM commitment_target_links WHERE commitment_id = %s AND target_id = %s",
        (write.id, write.linked_target),
    ).fetchone()
    return link is not None


def _value(
    conn: psycopg.Connection[tuple[object, ...]],
    write: Written,
    data: dict[str, object],
    column: str,
    new_shape: bool,
) -> object:
    """Where ``column`` of the old shape lives now: the column, a link table, or the stash
    key ``legacy_<column>`` in ``metadata``."""
    if column == "title" or not new_shape:
        return data.get(column)
    if write.table == "targets":
        link = "target_goal_links" if column == "goal_id" else "target_sprint_links"
        found = conn.execute(
            f"SELECT {column}::text FROM {link} WHERE target_id = %s".encode(),  # noqa: S608
            (write.id,),
        ).fetchall()
        return found[0][0] if len(found) == 1 else f"{len(found)} links"
    metadata = data.get("metadata")
    return metadata.get(f"legacy_{column}") if isinstance(metadata, dict) else None
