"""Migrations while an application writes: no deadlock, no lost write, the migration succeeds.

Four application connections (threads on loopback, bounded loops, one short transaction
each every few milliseconds) insert rows with foreign keys into every table the revision
touches, update and read, while ``lossless upgrade`` and then ``lossless downgrade`` run
through the CLI's own code path with ``--lock-retries``. Each application transaction
follows the schema it finds (a statement that meets the other shape is retried once in
it). Afterwards every committed write must be there, in the database's new structure.

migration-014 uses the benchmark's writers (``bench.app_writers``); iteration-decoupling
(move_fk_to_child / move_fk_to_parent) has its own, below.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
import sqlalchemy as sa
from psycopg import errors
from sqlalchemy.pool import NullPool

from bench.app_writers import Writer, Written, missing, seeded_ids
from scenarios import iteration_decoupling, migration_014
from toolkit import commands, migrate
from toolkit.migrate import Project
from toolkit.postgres import connect
from toolkit.postgres.url import sqlalchemy_url

WRITERS = 4
#: How a retry after a deadlock (the revision aborted by the server) is reported.
DEADLOCK = "deadlock with another session"
#: Transactions each connection commits before the migration starts, and after it ended.
AROUND = 3
#: Bounds every loop of the application (far above what a few seconds take).
MAX_TRANSACTIONS = 20_000


def _settings(url: str, scenario: str) -> commands.RunSettings:
    """``--lock-timeout 2s --lock-retries 10``."""
    return commands.RunSettings(url=url, scenario=scenario, lock_timeout_s=2.0, lock_retries=10)


def _migration(
    step: str, settings: commands.RunSettings, revision: str, progress: list[str]
) -> Callable[[], object]:
    run = commands.upgrade if step == "upgrade" else commands.downgrade
    return lambda: run(settings, revision, progress=progress.append)


def _seeded(project: Project, url: str, revision: str, seed: Callable[..., None]) -> None:
    migrate.upgrade(project, url, revision)
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            seed(conn, 1500, 7)
    finally:
        engine.dispose()


def _committed(threads: Sequence[_App]) -> list[int]:
    return [t.transactions() for t in threads]


def _wait_for(threads: Sequence[_App], counts: Sequence[int]) -> None:
    """Until each application connection committed ``AROUND`` more transactions (or died)."""
    while any(
        t.is_alive() and t.transactions() < n + AROUND for t, n in zip(threads, counts, strict=True)
    ):
        time.sleep(0.01)


class _App(threading.Thread):
    def transactions(self) -> int:
        raise NotImplementedError


class _BenchApp(_App):
    """``bench.app_writers.Writer`` seen as an application thread of these tests."""

    def __init__(self, writer: Writer) -> None:
        super().__init__(daemon=True)
        self.writer = writer

    def run(self) -> None:
        self.writer.run()

    def transactions(self) -> int:
        return self.writer.stats.transactions


def _under_load(
    threads: Sequence[_App], stop: threading.Event, migration: Callable[[], object]
) -> None:
    """Run ``migration`` once every application connection is writing; stop them after."""
    for thread in threads:
        thread.start()
    try:
        _wait_for(threads, [0] * len(threads))
        migration()
        _wait_for(threads, _committed(threads))
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_migration_014_under_writers_never_deadlocks_and_keeps_every_write(
    lossless_database: str,
) -> None:
    scenario = migration_014.SCENARIO
    project = Project.for_scenario(scenario)
    url = lossless_database
    _seeded(project, url, scenario.before, scenario.seed)
    goals, sprints, targets = seeded_ids(url)
    settings = _settings(url, scenario.name)
    written: list[Written] = []
    for step, revision in (("upgrade", scenario.after), ("downgrade", scenario.before)):
        stop = threading.Event()
        writers = [
            Writer(
                url,
                n,
                goals=goals,
                sprints=sprints,
                targets=targets,
                stop=stop,
                pace_s=0.005,
                max_transactions=MAX_TRANSACTIONS,
            )
            for n in range(WRITERS)
        ]
        progress: list[str] = []
        _under_load(
            [_BenchApp(w) for w in writers], stop, _migration(step, settings, revision, progress)
        )

        stats = [w.stats for w in writers]
        assert [s.deadlocks for s in stats] == [0] * WRITERS, step
        assert [e for s in stats for e in s.errors] == [], step
        assert not [line for line in progress if DEADLOCK in line], progress
        assert migrate.current(project, url) == (revision,)
        # Writes were committed in both shapes: the inserting connections met the change.
        assert all(s.shape_switches >= 1 for s in stats[:3]), (step, stats)
        written += [w for s in stats for w in s.written]
        assert missing(url, written) == [], step


# --- iteration-decoupling: plans, migrations on a plan, iterations ---------------------------


@dataclass(frozen=True)
class _Run:
    """One committed application transaction: a plan, a migration on it, an iteration."""

    plan: str
    migration: str
    iteration: str


@dataclass
class _PlanStats:
    transactions: int = 0
    deadlocks: int = 0
    shape_switches: int = 0
    reads: int = 0
    errors: list[str] = field(default_factory=list)
    written: list[_Run] = field(default_factory=list)


#: Statements per shape: before ADR 024 the migration carries the plan, after it the iteration.
_OLD = (
    "INSERT INTO migrations_mig (mig_id, mig_name, plm_id) VALUES (%(mig)s, 'app', %(plm)s)",
    "INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type)"
    " VALUES (%(ite)s, %(mig)s, 'app', 'DR')",
)
_NEW = (
    "INSERT INTO migrations_mig (mig_id, mig_name) VALUES (%(mig)s, 'app')",
    "INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, plm_id)"
    " VALUES (%(ite)s, %(mig)s, 'app', 'DR', %(plm)s)",
)
_SHAPE = (errors.UndefinedColumn, errors.NotNullViolation)


class _PlanApp(_App):
    """One application connection of the iteration-decoupling schema."""

    def __init__(self, url: str, number: int, stop: threading.Event) -> None:
        super().__init__(name=f"app-{number}", daemon=True)
        self.url, self.number, self.stop = url, number, stop
        self.stats = _PlanStats()
        self.new_shape = False

    def transactions(self) -> int:
        return self.stats.transactions

    def run(self) -> None:
        with connect(self.url, autocommit=False) as conn:
            while not self.stop.is_set() and self.stats.transactions < MAX_TRANSACTIONS:
                self._transaction(conn)
                time.sleep(0.005)

    def _transaction(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        ids = {"plm": str(uuid.uuid4()), "mig": str(uuid.uuid4()), "ite": str(uuid.uuid4())}
        for _attempt in range(2):
            try:
                conn.execute(
                    "INSERT INTO plans_master_plm (plm_id, plm_name) VALUES (%(plm)s, 'app')", ids
                )
                for statement in _NEW if self.new_shape else _OLD:
                    conn.execute(statement.encode(), ids)
                if self.number % 2:
                    conn.execute(
                        "SELECT count(*) FROM iterations_ite AS i"
                        " JOIN migrations_mig AS m USING (mig_id) JOIN plans_master_plm AS p"
                        " ON p.plm_id = %(plm)s",
                        ids,
                    )
                    self.stats.reads += 1
                conn.commit()
            except _SHAPE:
                conn.rollback()
                self.new_shape = not self.new_shape
                self.stats.shape_switches += 1
                continue
            except psycopg.Error as exc:
                conn.rollback()
                if isinstance(exc, errors.DeadlockDetected):
                    self.stats.deadlocks += 1
                else:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
                return
            self.stats.transactions += 1
            self.stats.written.append(_Run(ids["plm"], ids["mig"], ids["ite"]))
            return


_ON_PLAN = (
    "SELECT count(*) FROM iterations_ite AS i JOIN migrations_mig AS m USING (mig_id)"
    " JOIN plans_master_plm AS p ON p.plm_id = {holder}.plm_id"
    " WHERE i.ite_id = %s AND m.mig_id = %s AND p.plm_id = %s"
)


def _missing_runs(url: str, runs: Sequence[_Run]) -> list[_Run]:
    """The committed runs whose migration and iteration are not on their plan any more, in
    whichever shape the database is: ``migrations_mig.plm_id`` or ``iterations_ite.plm_id``."""
    with connect(url) as conn:
        old_shape = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'migrations_mig' AND column_name = 'plm_id'"
        ).fetchone()
        query = _ON_PLAN.format(holder="m" if old_shape else "i")
        return [
            run
            for run in runs
            if conn.execute(query.encode(), (run.iteration, run.migration, run.plan)).fetchone()
            != (1,)
        ]


def test_iteration_decoupling_under_writers_never_deadlocks_and_keeps_every_write(
    lossless_database: str,
) -> None:
    scenario = iteration_decoupling.SCENARIO
    project = Project.for_scenario(scenario)
    url = lossless_database
    _seeded(project, url, scenario.before, scenario.seed)
    settings = _settings(url, scenario.name)
    written: list[_Run] = []
    for step, revision in (("upgrade", scenario.after), ("downgrade", scenario.before)):
        stop = threading.Event()
        apps = [_PlanApp(url, n, stop) for n in range(WRITERS)]
        progress: list[str] = []
        _under_load(apps, stop, _migration(step, settings, revision, progress))

        assert [a.stats.deadlocks for a in apps] == [0] * WRITERS, step
        assert [e for a in apps for e in a.stats.errors] == [], step
        assert not [line for line in progress if DEADLOCK in line], progress
        assert migrate.current(project, url) == (revision,)
        # Each connection met the schema it did not expect: once on the way up; on the way
        # down first the upgraded one (it starts in the old shape), then the old one again.
        switches = 1 if step == "upgrade" else 2
        assert all(a.stats.shape_switches >= switches for a in apps), step
        assert all(a.stats.reads > 0 for a in apps[1::2]), step
        written += [r for a in apps for r in a.stats.written]
        assert _missing_runs(url, written) == [], step
