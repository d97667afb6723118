"""Online mode (``toolkit.ops.online``) of the migration-014 upgrade on real PostgreSQL.

The plain upgrade is the reference: an online upgrade of a copy of the same database must
end with the same full-catalog fingerprint (names, constraints, indexes, columns, data),
whether the application wrote during it or not; a refusal leaves nothing behind.
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
from sqlalchemy import Connection, text

from tests.cli.conftest import engine_on
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import DataRefusedError
from toolkit.migrate import Project
from toolkit.ops.online import progress_lines
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.roundtrip import run_scenario_roundtrip
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("migration-014")
PROJECT = Project.for_scenario(SCENARIO)
ONLINE = {"online": "true", "online_batch_size": "7"}
#: Each junction, and the statement giving its links ids and times derived from the link.
JUNCTIONS = {
    "target_goal_links": "UPDATE target_goal_links SET created_at = '2000-01-01',"
    " id = md5(target_id::text || goal_id::text)::uuid",
    "target_sprint_links": "UPDATE target_sprint_links SET created_at = '2000-01-01',"
    " id = md5(target_id::text || sprint_id::text)::uuid",
}


@pytest.fixture(scope="module")
def template(lossless_server: Server) -> Iterator[str]:
    """The scenario's pre-refactor schema with 120 seeded targets (copied by each test)."""
    with scratch_database(lossless_server.url, prefix="lossless_online_template") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, 120, 3)
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_online", template=name) as url:
        yield url


def normalized_fingerprint(url: str) -> Any:
    """The fingerprint, once each link's own id and creation time (values the junction
    gives a link when it is made, different in any two runs) are derived from the link."""
    with engine_on(url) as engine, engine.begin() as conn:
        for junction, statement in JUNCTIONS.items():
            exists = text("SELECT to_regclass(:name) IS NOT NULL")
            if conn.execute(exists, {"name": junction}).scalar():
                conn.execute(text(statement))
        return fingerprint(conn)


def leftovers(conn: Connection) -> list[str]:
    """What online mode leaves while under way: mirror triggers and functions, progress."""
    found = [
        f"trigger {r[0]}"
        for r in conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'lossless%'"))
    ]
    found += [
        f"function {r[0]}"
        for r in conn.execute(text("SELECT proname FROM pg_proc WHERE proname LIKE 'lossless%'"))
    ]
    if conn.execute(text("SELECT to_regclass('lossless_online') IS NOT NULL")).scalar():
        found += [
            f"progress {r[0]}.{r[1]}"
            for r in conn.execute(text("SELECT table_name, column_name FROM lossless_online"))
        ]
        found.append("table lossless_online")
    return found


def test_online_upgrade_ends_as_the_plain_one(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as plain, copy_of(lossless_server, template) as online:
        expected = migrate.upgrade(PROJECT, plain, SCENARIO.after)
        results = migrate.upgrade(PROJECT, online, SCENARIO.after, x=ONLINE)
        assert fingerprint_diff(normalized_fingerprint(plain), normalized_fingerprint(online)) == []
        assert [(r.operation, r.counts, r.notes) for r in results] == [
            (r.operation, r.counts, r.notes) for r in expected
        ]
        with engine_on(online) as engine, engine.connect() as conn:
            assert leftovers(conn) == []
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                SCENARIO.after
            )


def test_a_refusal_online_leaves_nothing_behind(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as url:
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE commitments SET metadata = '[1, 2]' WHERE id = (SELECT min(id::text)"
                    "::uuid FROM commitments WHERE goal_id IS NOT NULL)"
                )
            )
        before = normalized_fingerprint(url)
        with pytest.raises(DataRefusedError, match="commitments"):
            migrate.upgrade(PROJECT, url, SCENARIO.after, x=ONLINE)
        assert fingerprint_diff(before, normalized_fingerprint(url)) == []


# -- writes during the online upgrade ------------------------------------------------------


@dataclass
class Writer:
    """An application connection writing ``targets`` and ``commitments`` rows of its own
    (every row a writer touches is touched by it alone), keeping what it committed."""

    url: str
    number: int
    of: int
    stop: threading.Event
    #: Shared by the writers: none writes before every one has read the rows it owns
    #: (a row another writer inserted first could otherwise fall to two writers).
    ready: threading.Barrier
    #: target id -> (goal_id, sprint_id), None when deleted; commitment id -> goal_id
    targets: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    commitments: dict[str, str | None] = field(default_factory=dict)
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
                for r in conn.execute("SELECT id::text FROM targets ORDER BY id")
                if int(r[0][-2:], 16) % self.of == self.number
            ]
            commitments = [
                r[0]
                for r in conn.execute(
                    "SELECT id::text FROM commitments WHERE metadata IS NULL"
                    " OR jsonb_typeof(metadata) = 'object' ORDER BY id"
                )
                if int(r[0][-2:], 16) % self.of == self.number
            ]
            goals = [r[0] for r in conn.execute("SELECT id::text FROM client_goals")]
            sprints = [r[0] for r in conn.execute("SELECT id::text FROM sprints")]
            self.ready.wait(timeout=60)  # every writer has read what is its own
            for _ in range(400):
                if self.stop.is_set():
                    return
                try:
                    self._one(conn, rng, mine, commitments, goals, sprints)
                except psycopg.errors.UndefinedColumn:
                    return  # contracted: the old code's writes end here
                self.committed += 1

    def _one(
        self,
        conn: psycopg.Connection[Any],
        rng: random.Random,
        mine: list[str],
        commitments: list[str],
        goals: list[str],
        sprints: list[str],
    ) -> None:
        action = rng.choice(("insert", "update", "update", "delete", "commitment"))
        goal, sprint = rng.choice(goals), rng.choice(sprints)
        if action == "insert":
            row = conn.execute(
                "INSERT INTO targets (title, goal_id, sprint_id) VALUES ('w', %s, %s)"
                " RETURNING id::text",
                (goal, sprint),
            ).fetchone()
            assert row is not None
            mine.append(row[0])
            self.targets[row[0]] = (goal, sprint)
        elif action == "update" and mine:
            target = rng.choice(mine)
            conn.execute(
                "UPDATE targets SET goal_id = %s, sprint_id = %s WHERE id = %s",
                (goal, sprint, target),
            )
            self.targets[target] = (goal, sprint)
        elif action == "delete" and len(mine) > 5:
            target = mine.pop(rng.randrange(len(mine)))
            conn.execute("DELETE FROM targets WHERE id = %s", (target,))
            self.targets[target] = None
        elif commitments:
            commitment = rng.choice(commitments)
            value = None if rng.random() < 0.3 else goal
            conn.execute("UPDATE commitments SET goal_id = %s WHERE id = %s", (value, commitment))
            self.commitments[commitment] = value


def _state(url: str) -> tuple[dict[str, tuple[str | None, str | None]], dict[str, Any]]:
    """Before: each target's (goal_id, sprint_id), each commitment's (goal_id, sprint_id)."""
    with psycopg.connect(libpq_url(url)) as conn:
        targets = {
            r[0]: (r[1], r[2])
            for r in conn.execute("SELECT id::text, goal_id::text, sprint_id::text FROM targets")
        }
        commitments = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT id::text, goal_id::text, sprint_id::text FROM commitments"
            )
        }
    return targets, commitments


def test_writes_during_an_online_upgrade_are_all_reflected(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url:
        targets, commitments = _state(url)
        stop, ready = threading.Event(), threading.Barrier(3)
        writers = [Writer(url, n, 3, stop, ready) for n in range(3)]
        threads = [threading.Thread(target=w.run) for w in writers]
        for thread in threads:
            thread.start()
        try:
            while sum(w.committed for w in writers) < 30 and all(t.is_alive() for t in threads):
                stop.wait(0.01)
            during = sum(w.committed for w in writers)
            migrate.upgrade(PROJECT, url, SCENARIO.after, x={**ONLINE, "online_batch_size": "3"})
            during = sum(w.committed for w in writers) - during
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert [w.error for w in writers] == [None, None, None]
        assert during > 0  # the application wrote while the upgrade ran
        for writer in writers:
            for target, values in writer.targets.items():
                if values is None:
                    targets.pop(target, None)
                else:
                    targets[target] = values
            for commitment, goal in writer.commitments.items():
                commitments[commitment] = (goal, commitments[commitment][1])
        with psycopg.connect(libpq_url(url)) as conn:
            links = {
                (r[0], r[1], r[2])
                for r in conn.execute(
                    "SELECT 'goal', target_id::text, goal_id::text FROM target_goal_links"
                    " UNION ALL SELECT 'sprint', target_id::text, sprint_id::text"
                    " FROM target_sprint_links"
                )
            }
            stashed = {
                r[0]: (r[1], r[2])
                for r in conn.execute(
                    "SELECT id::text, metadata ->> 'legacy_goal_id',"
                    " metadata ->> 'legacy_sprint_id' FROM commitments"
                )
            }
        expected = {("goal", t, g) for t, (g, _) in targets.items() if g is not None}
        expected |= {("sprint", t, s) for t, (_, s) in targets.items() if s is not None}
        assert links == expected
        assert stashed == commitments


def test_a_round_trip_online_passes_the_verifier(lossless_server: Server) -> None:
    report = run_scenario_roundtrip(SCENARIO, lossless_server.url, rows=60, seed=2, online=True)
    assert report.ok, report.render()
    assert [s.name for s in report.steps] == [
        "prepare",
        "upgrade",
        "downgrade",
        "re-upgrade",
        "new shape",
    ]
    assert f"every upgrade to {SCENARIO.after} ran in online mode (-x online=true)" in report.notes
    assert f"every downgrade to {SCENARIO.before} ran in online mode (-x online=true)" in (
        report.notes
    )


def test_a_busy_lock_in_a_short_transaction_is_retried(
    lossless_server: Server, template: str
) -> None:
    """An application transaction holding ``targets`` (ROW EXCLUSIVE, as any write) while
    the expand asks for its lock: the expand gives up after the short lock_timeout, says
    so, tries again once the application has committed, and ends as the plain upgrade."""
    with copy_of(lossless_server, template) as plain, copy_of(lossless_server, template) as url:
        migrate.upgrade(PROJECT, plain, SCENARIO.after)
        holding, release = threading.Event(), threading.Event()

        def application() -> None:
            with psycopg.connect(libpq_url(url)) as conn:
                conn.execute("LOCK TABLE targets IN ROW EXCLUSIVE MODE")
                holding.set()
                release.wait(10)

        blocker = threading.Thread(target=application)
        blocker.start()
        lines: list[str] = []

        def sink(line: str) -> None:
            lines.append(line)
            if "retry" in line:
                release.set()

        try:
            assert holding.wait(10)
            with progress_lines(sink):
                migrate.upgrade(PROJECT, url, SCENARIO.after, x=ONLINE)
        finally:
            release.set()
            blocker.join()
        assert any("a lock was busy; retry 1 in" in line for line in lines), lines
        assert fingerprint_diff(normalized_fingerprint(plain), normalized_fingerprint(url)) == []
