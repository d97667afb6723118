"""Online mode of ``move_fk_to_child`` (the iteration-decoupling upgrade) on real PostgreSQL.

The plain upgrade is the reference: an online upgrade of a copy of the same database ends
with the same full-catalog fingerprint, with or without the application writing during
it; an abort gives back the database as it was; a refusal leaves nothing behind.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from tests.cli.conftest import engine_on
from tests.ops.test_online import leftovers
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import DataRefusedError, UsageError
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.roundtrip import run_scenario_roundtrip
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("iteration-decoupling")
PROJECT = Project.for_scenario(SCENARIO)
ONLINE = {"online": "true", "online_batch_size": "5"}


@pytest.fixture(scope="module")
def template(lossless_server: Server) -> Iterator[str]:
    """Model B with 90 seeded iterations (copied by each test)."""
    with scratch_database(lossless_server.url, prefix="lossless_move_template") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, 90, 4)
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_move", template=name) as url:
        yield url


def print_of(url: str) -> Any:
    with engine_on(url) as engine, engine.connect() as conn:
        return fingerprint(conn)


def no_leftovers(url: str) -> list[str]:
    with engine_on(url) as engine, engine.connect() as conn:
        return leftovers(conn)


def test_online_move_to_child_ends_as_the_plain_one(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as plain, copy_of(lossless_server, template) as online:
        expected = migrate.upgrade(PROJECT, plain, SCENARIO.after)
        results = migrate.upgrade(PROJECT, online, SCENARIO.after, x=ONLINE)
        assert fingerprint_diff(print_of(plain), print_of(online)) == []
        assert [(r.operation, r.counts, r.notes) for r in results] == [
            (r.operation, r.counts, r.notes) for r in expected
        ]
        assert results[0].counts["stashed"] > 0 and results[0].counts["moved"] > 0
        assert no_leftovers(online) == []


# -- writes during the online upgrade ------------------------------------------------------


@dataclass
class Writer:
    """An application connection working on migrations of its own (and their iterations):
    inserts, re-parents and deletes iterations, changes a migration's plan or metadata,
    inserts migrations; keeps what it committed."""

    url: str
    number: int
    of: int
    stop: threading.Event
    #: Shared by the writers: none writes before every one has read the rows it owns
    #: (a row another writer inserted first could otherwise fall to two writers).
    ready: threading.Barrier
    #: migration -> plan; iteration -> migration (None: deleted)
    plans: dict[str, str] = field(default_factory=dict)
    iterations: dict[str, str | None] = field(default_factory=dict)
    committed: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # handed to the test
            self.error = exc

    def _loop(self) -> None:
        rng = random.Random(self.number)
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            mine = [
                r[0]
                for r in conn.execute("SELECT mig_id::text FROM migrations_mig ORDER BY 1")
                if int(r[0][-2:], 16) % self.of == self.number
            ]
            owned = [
                r[0]
                for r in conn.execute(
                    "SELECT ite_id::text FROM iterations_ite WHERE mig_id::text = ANY(%s)"
                    " ORDER BY 1",
                    (mine,),
                )
            ]
            plans = [r[0] for r in conn.execute("SELECT plm_id::text FROM plans_master_plm")]
            self.ready.wait(timeout=60)  # every writer has read what is its own
            for _ in range(300):
                if self.stop.is_set():
                    return
                try:
                    self._one(conn, rng, mine, owned, plans)
                except (psycopg.errors.UndefinedColumn, psycopg.errors.NotNullViolation):
                    # contracted: the old code's writes end here (its iterations have no plan)
                    return
                self.committed += 1

    def _one(
        self,
        conn: psycopg.Connection[Any],
        rng: random.Random,
        mine: list[str],
        owned: list[str],
        plans: list[str],
    ) -> None:
        action = rng.choice(("child", "child", "move", "delete", "plan", "metadata", "parent"))
        migration, plan = rng.choice(mine), rng.choice(plans)
        if action == "child":
            row = conn.execute(
                "INSERT INTO iterations_ite (mig_id, ite_name, ite_type) VALUES (%s, 'w', 'DR')"
                " RETURNING ite_id::text",
                (migration,),
            ).fetchone()
            assert row is not None
            owned.append(row[0])
            self.iterations[row[0]] = migration
        elif action == "move" and owned:
            iteration = rng.choice(owned)
            conn.execute(
                # Every statement names migrations_mig.plm_id: after the contract the old
                # code stops (a write after it is no longer the plain run's input).
                "UPDATE iterations_ite AS i SET mig_id = m.mig_id FROM migrations_mig AS m"
                " WHERE m.mig_id = %s AND m.plm_id IS NOT NULL AND i.ite_id = %s",
                (migration, iteration),
            )
            self.iterations[iteration] = migration
        elif action == "delete" and owned:
            iteration = owned.pop(rng.randrange(len(owned)))
            conn.execute(
                "DELETE FROM iterations_ite AS i USING migrations_mig AS m"
                " WHERE i.ite_id = %s AND m.mig_id = i.mig_id AND m.plm_id IS NOT NULL",
                (iteration,),
            )
            self.iterations[iteration] = None
        elif action == "plan":
            conn.execute(
                "UPDATE migrations_mig SET plm_id = %s WHERE mig_id = %s", (plan, migration)
            )
            self.plans[migration] = plan
        elif action == "metadata":
            conn.execute(
                "UPDATE migrations_mig SET mig_metadata = %s WHERE mig_id = %s"
                " AND plm_id IS NOT NULL",
                (None if rng.random() < 0.5 else '{"w": 1}', migration),
            )
        else:
            row = conn.execute(
                "INSERT INTO migrations_mig (mig_name, plm_id) VALUES ('w', %s)"
                " RETURNING mig_id::text",
                (plan,),
            ).fetchone()
            assert row is not None
            mine.append(row[0])
            self.plans[row[0]] = plan


def _family(url: str) -> tuple[dict[str, str], dict[str, str | None]]:
    """Each migration's plan, each iteration's migration."""
    with psycopg.connect(libpq_url(url)) as conn:
        plans = {
            r[0]: r[1]
            for r in conn.execute("SELECT mig_id::text, plm_id::text FROM migrations_mig")
        }
        iterations: dict[str, str | None] = {
            r[0]: r[1]
            for r in conn.execute("SELECT ite_id::text, mig_id::text FROM iterations_ite")
        }
    return plans, iterations


def test_writes_during_an_online_move_to_child_are_all_reflected(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url:
        plans, iterations = _family(url)
        stop, ready = threading.Event(), threading.Barrier(3)
        writers = [Writer(url, n, 3, stop, ready) for n in range(3)]
        threads = [threading.Thread(target=w.run) for w in writers]
        for thread in threads:
            thread.start()
        try:
            while sum(w.committed for w in writers) < 30 and all(t.is_alive() for t in threads):
                stop.wait(0.01)
            during = sum(w.committed for w in writers)
            migrate.upgrade(PROJECT, url, SCENARIO.after, x={**ONLINE, "online_batch_size": "2"})
            during = sum(w.committed for w in writers) - during
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert [w.error for w in writers] == [None, None, None]
        assert during > 0  # the application wrote while the upgrade ran
        for writer in writers:
            plans.update(writer.plans)
            iterations.update(writer.iterations)
        children = {m for m in iterations.values() if m is not None}
        with psycopg.connect(libpq_url(url)) as conn:
            carried = {
                r[0]: r[1]
                for r in conn.execute("SELECT ite_id::text, plm_id::text FROM iterations_ite")
            }
            kept = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT mig_id::text, mig_metadata ->> 'legacy_plm_id' FROM migrations_mig"
                )
            }
        assert carried == {i: plans[m] for i, m in iterations.items() if m is not None}
        assert kept == {m: (None if m in children else p) for m, p in plans.items()}
        assert no_leftovers(url) == []


# -- refusals -------------------------------------------------------------------------------


def test_a_refusal_online_leaves_nothing_behind(lossless_server: Server, template: str) -> None:
    """A childless migration whose metadata cannot take the key: refused by the checks,
    before the expand."""
    with copy_of(lossless_server, template) as url:
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE migrations_mig AS m SET mig_metadata = '[1, 2]' WHERE mig_id ="
                    " (SELECT min(mig_id::text)::uuid FROM migrations_mig AS p WHERE NOT EXISTS"
                    " (SELECT FROM iterations_ite AS i WHERE i.mig_id = p.mig_id))"
                )
            )
        before = print_of(url)
        with pytest.raises(DataRefusedError, match="migrations_mig"):
            migrate.upgrade(PROJECT, url, SCENARIO.after, x=ONLINE)
        assert fingerprint_diff(before, print_of(url)) == []


def test_user_triggers_of_the_child_refuse_online_mode(
    lossless_server: Server, template: str
) -> None:
    """The batches and the mirrors write the child's rows: its enabled user triggers would
    fire on each (a plain run keeps them quiet in its own transaction)."""
    with copy_of(lossless_server, template) as url:
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$BEGIN RETURN NEW; END$$;"
                    " CREATE TRIGGER audit BEFORE UPDATE ON iterations_ite"
                    " FOR EACH ROW EXECUTE FUNCTION audit()"
                )
            )
        before = print_of(url)
        with pytest.raises(UsageError, match=r"iterations_ite has enabled triggers \(audit\)"):
            migrate.upgrade(PROJECT, url, SCENARIO.after, x=ONLINE)
        assert fingerprint_diff(before, print_of(url)) == []
        migrate.upgrade(PROJECT, url, SCENARIO.after)  # a plain run keeps them quiet


def test_a_round_trip_online_passes_the_verifier(lossless_server: Server) -> None:
    report = run_scenario_roundtrip(SCENARIO, lossless_server.url, rows=60, seed=2, online=True)
    assert report.ok, report.render()
    assert f"every upgrade to {SCENARIO.after} ran in online mode (-x online=true)" in report.notes
    assert f"every downgrade to {SCENARIO.before} ran in online mode (-x online=true)" in (
        report.notes
    )


# -- move_fk_to_parent: the downgrade -------------------------------------------------------


@pytest.fixture(scope="module")
def upgraded(lossless_server: Server, template: str) -> Iterator[str]:
    """Model C after a plain upgrade, then iterations added to some migrations that kept
    their plan (their kept plan is overridden by the downgrade) and some removed (a
    migration left without iterations or kept plan is refused: none here)."""
    with copy_of(lossless_server, template) as url:
        migrate.upgrade(PROJECT, url, SCENARIO.after)
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO iterations_ite (mig_id, ite_name, ite_type, plm_id)"
                    " SELECT m.mig_id, 'late', 'DR', (SELECT min(p.plm_id::text)::uuid"
                    " FROM plans_master_plm AS p WHERE p.plm_id::text <> m.mig_metadata"
                    " ->> 'legacy_plm_id') FROM migrations_mig AS m"
                    " WHERE m.mig_metadata ? 'legacy_plm_id' ORDER BY m.mig_id LIMIT 3"
                )
            )
        name = url.rsplit("/", 1)[1]
        with scratch_database(lossless_server.url, prefix="lossless_move_up", template=name) as up:
            yield up


def test_online_move_to_parent_ends_as_the_plain_one(
    lossless_server: Server, upgraded: str
) -> None:
    with copy_of(lossless_server, upgraded) as plain, copy_of(lossless_server, upgraded) as online:
        expected = migrate.downgrade(PROJECT, plain, SCENARIO.before)
        results = migrate.downgrade(PROJECT, online, SCENARIO.before, x=ONLINE)
        assert fingerprint_diff(print_of(plain), print_of(online)) == []
        assert [(r.operation, r.counts, r.notes) for r in results] == [
            (r.operation, r.counts, r.notes) for r in expected
        ]
        assert results[0].counts["restored"] > 0 and results[0].counts["lost"] > 0
        assert no_leftovers(online) == []


@dataclass
class UpWriter:
    """Model C application code on migrations of its own: adds, moves and removes
    iterations (never the last one of a migration without a kept plan), changes an
    iteration's plan; keeps what it committed (iteration -> (migration, plan, created_at),
    None: deleted)."""

    url: str
    number: int
    of: int
    stop: threading.Event
    #: Shared by the writers: none writes before every one has read the rows it owns
    #: (a row another writer inserted first could otherwise fall to two writers).
    ready: threading.Barrier
    iterations: dict[str, tuple[str, str, Any] | None] = field(default_factory=dict)
    committed: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # handed to the test
            self.error = exc

    def _loop(self) -> None:
        rng = random.Random(self.number)
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT i.ite_id::text, i.mig_id::text, i.plm_id::text, i.created_at"
                " FROM iterations_ite AS i ORDER BY 1"
            ).fetchall()
            kept = {
                r[0]
                for r in conn.execute(
                    "SELECT mig_id::text FROM migrations_mig WHERE mig_metadata ? 'legacy_plm_id'"
                )
            }
            state = {
                r[0]: (r[1], r[2], r[3])
                for r in rows
                if int(r[1][-2:], 16) % self.of == self.number
            }
            mine = sorted(
                {m for m, _, _ in state.values()}
                | {m for m in kept if int(m[-2:], 16) % self.of == self.number}
            )
            plans = [r[0] for r in conn.execute("SELECT plm_id::text FROM plans_master_plm")]
            self.ready.wait(timeout=60)  # every writer has read what is its own
            for _ in range(300):
                if self.stop.is_set():
                    return
                try:
                    self._one(conn, rng, mine, kept, state, plans)
                except psycopg.errors.UndefinedColumn:
                    return  # contracted: the old code's writes end here
                self.committed += 1

    def _one(
        self,
        conn: psycopg.Connection[Any],
        rng: random.Random,
        mine: list[str],
        kept: set[str],
        state: dict[str, tuple[str, str, Any]],
        plans: list[str],
    ) -> None:
        action = rng.choice(("add", "add", "move", "delete", "plan"))
        migration, plan = rng.choice(mine), rng.choice(plans)

        def removable(iteration: str) -> bool:
            owner = state[iteration][0]
            return owner in kept or sum(1 for m, _, _ in state.values() if m == owner) > 1

        candidates = [i for i in state if removable(i)]
        if action == "add":
            row = conn.execute(
                "INSERT INTO iterations_ite (mig_id, ite_name, ite_type, plm_id)"
                " VALUES (%s, 'w', 'DR', %s) RETURNING ite_id::text, created_at",
                (migration, plan),
            ).fetchone()
            assert row is not None
            state[row[0]] = (migration, plan, row[1])
        elif action == "move" and candidates:
            iteration = rng.choice(candidates)
            conn.execute(
                # Every statement names plm_id: after the contract the old code stops.
                "UPDATE iterations_ite SET mig_id = %s WHERE ite_id = %s AND plm_id IS NOT NULL",
                (migration, iteration),
            )
            state[iteration] = (migration, *state[iteration][1:])
        elif action == "delete" and candidates:
            iteration = rng.choice(candidates)
            conn.execute(
                "DELETE FROM iterations_ite WHERE ite_id = %s AND plm_id IS NOT NULL", (iteration,)
            )
            del state[iteration]
            self.iterations[iteration] = None
            return
        elif action == "plan" and state:
            iteration = rng.choice(sorted(state))
            conn.execute(
                "UPDATE iterations_ite SET plm_id = %s WHERE ite_id = %s", (plan, iteration)
            )
            state[iteration] = (state[iteration][0], plan, state[iteration][2])
        else:
            return
        for iteration, values in state.items():
            self.iterations[iteration] = values


def test_writes_during_an_online_move_to_parent_are_all_reflected(
    lossless_server: Server, upgraded: str
) -> None:
    with copy_of(lossless_server, upgraded) as url:
        with psycopg.connect(libpq_url(url)) as conn:
            iterations: dict[str, tuple[str, str, Any] | None] = {
                r[0]: (r[1], r[2], r[3])
                for r in conn.execute(
                    "SELECT ite_id::text, mig_id::text, plm_id::text, created_at"
                    " FROM iterations_ite"
                )
            }
            kept = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT mig_id::text, mig_metadata ->> 'legacy_plm_id' FROM migrations_mig"
                )
            }
        stop, ready = threading.Event(), threading.Barrier(3)
        writers = [UpWriter(url, n, 3, stop, ready) for n in range(3)]
        threads = [threading.Thread(target=w.run) for w in writers]
        for thread in threads:
            thread.start()
        try:
            while sum(w.committed for w in writers) < 30 and all(t.is_alive() for t in threads):
                stop.wait(0.01)
            during = sum(w.committed for w in writers)
            migrate.downgrade(PROJECT, url, SCENARIO.before, x={**ONLINE, "online_batch_size": "2"})
            during = sum(w.committed for w in writers) - during
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert [w.error for w in writers] == [None, None, None]
        assert during > 0  # the application wrote while the downgrade ran
        for writer in writers:
            iterations.update(writer.iterations)
        firsts: dict[str, tuple[Any, str, str]] = {}
        for iteration, values in iterations.items():
            if values is not None:
                migration, plan, created = values
                firsts[migration] = min(
                    firsts.get(migration, (created, iteration, plan)), (created, iteration, plan)
                )
        expected = {m: (firsts[m][2] if m in firsts else k) for m, k in kept.items()}
        with psycopg.connect(libpq_url(url)) as conn:
            plans = {
                r[0]: r[1]
                for r in conn.execute("SELECT mig_id::text, plm_id::text FROM migrations_mig")
            }
            assert conn.execute(
                "SELECT count(*) FROM migrations_mig WHERE mig_metadata ? 'legacy_plm_id'"
            ).fetchone() == (0,)
        assert plans == expected
        assert no_leftovers(url) == []


def test_a_kept_plan_without_referent_is_refused_before_the_online_downgrade(
    lossless_server: Server, upgraded: str
) -> None:
    """A plain downgrade's new foreign key would reject it; online, the foreign key comes
    after the backfill, so the same refusal runs with the checks."""
    with copy_of(lossless_server, upgraded) as url:
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE migrations_mig SET mig_metadata = mig_metadata"
                    ' || \'{"legacy_plm_id": "00000000-0000-0000-0000-000000000001"}\''
                    " WHERE mig_id = (SELECT min(m.mig_id::text)::uuid FROM migrations_mig AS m"
                    " WHERE m.mig_metadata ? 'legacy_plm_id' AND NOT EXISTS"
                    " (SELECT FROM iterations_ite AS i WHERE i.mig_id = m.mig_id))"
                )
            )
        before = print_of(url)
        with pytest.raises(DataRefusedError, match=r"plans_master_plm\.plm_id no longer has"):
            migrate.downgrade(PROJECT, url, SCENARIO.before, x=ONLINE)
        assert fingerprint_diff(before, print_of(url)) == []
