"""``restore_column_from_jsonb`` in online mode, on real PostgreSQL.

The plain downgrade of the same data is the reference (full-catalog fingerprint, nothing
normalised): two columns of one table come back from one JSONB (shared NULL marks), one
with a foreign key, a partial index, a comment and a statistics target, the other NOT NULL
with a default, a UNIQUE and a CHECK constraint and a column grant.
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
from sqlalchemy.exc import DBAPIError

from tests.cli.conftest import engine_on
from tests.ops.online_restore_project import R1, R2, project, seed, write_project
from tests.ops.test_online import leftovers
from toolkit import migrate
from toolkit.errors import DataRefusedError, OnlineAbortedError, UsageError
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

ONLINE = {"online": "true", "online_batch_size": "7"}
ROWS = 150
MIRROR = "lossless_online_items_goal_id"
#: Values under the key that the stash would not have written so: a number as a string,
#: JSON null (item 3's metadata was NULL before the stash: it is marked). A restore makes
#: them 3, NULL and NULL; an abort must give back what was written.
NOT_AS_STASHED = """
UPDATE items SET metadata = metadata || CASE id WHEN 1 THEN '{"legacy_goal_id": "3"}'
    ELSE '{"legacy_goal_id": null}' END::jsonb WHERE id IN (1, 2, 3)
"""


@pytest.fixture(scope="module")
def restore_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return project(write_project(tmp_path_factory.mktemp("restore_online")))


@pytest.fixture(scope="module")
def stashed(lossless_server: Server, restore_project: Project) -> Iterator[str]:
    """Both columns stashed (plain upgrade to r2) over ``ROWS`` seeded items."""
    with scratch_database(lossless_server.url, prefix="lossless_restore_template") as url:
        migrate.upgrade(restore_project, url, R1)
        with engine_on(url) as engine, engine.begin() as conn:
            seed(conn, ROWS)
        migrate.upgrade(restore_project, url, R2)
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(text(NOT_AS_STASHED))
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_restore", template=name) as url:
        yield url


def _fingerprint(url: str) -> Any:
    with engine_on(url) as engine, engine.connect() as conn:
        return fingerprint(conn)


def _leftovers(url: str) -> list[str]:
    with engine_on(url) as engine, engine.connect() as conn:
        return leftovers(conn)


def test_online_restore_ends_as_the_plain_one(
    lossless_server: Server, restore_project: Project, stashed: str
) -> None:
    with copy_of(lossless_server, stashed) as plain, copy_of(lossless_server, stashed) as url:
        expected = migrate.downgrade(restore_project, plain, R1)
        results = migrate.downgrade(restore_project, url, R1, x=ONLINE)
        assert fingerprint_diff(_fingerprint(plain), _fingerprint(url)) == []
        assert [(r.operation, r.counts, r.notes) for r in results] == [
            (r.operation, r.counts, r.notes) for r in expected
        ]
        assert [r.counts["restored"] for r in results] == [ROWS, ROWS * 3 // 4 + 1]
        assert _leftovers(url) == []
        assert migrate.current(restore_project, url) == (R1,)


def test_abort_after_the_values_moved_gives_the_stashed_state_back(
    lossless_server: Server, restore_project: Project, stashed: str
) -> None:
    with copy_of(lossless_server, stashed) as url:
        before = _fingerprint(url)
        x = {**ONLINE, "online_retries": "0", "online_lock_timeout_ms": "50"}
        # The foreign key to goals (the last constraint) cannot be added while this is held:
        # the run stops after both backfills, every value moved into its column.
        with psycopg.connect(libpq_url(url)) as blocker:
            blocker.execute("LOCK TABLE goals IN SHARE MODE")
            with pytest.raises(DBAPIError, match="lock"):
                migrate.downgrade(restore_project, url, R1, x=x)
            blocker.rollback()
        with psycopg.connect(libpq_url(url)) as conn:
            moved = conn.execute("SELECT count(goal_id), count(code) FROM items").fetchone()
            assert moved == (ROWS * 3 // 4 + 1 - 2, ROWS)  # items 2 and 3: JSON null
            held = conn.execute("SELECT count(*) FROM items WHERE metadata ? 'legacy_code'")
            assert held.fetchone() == (0,)
        assert "table lossless_online" in _leftovers(url)
        with pytest.raises(OnlineAbortedError, match=r"undone: Restore items\.goal_id"):
            migrate.downgrade(restore_project, url, R1, x={"online": "abort"})
        assert fingerprint_diff(before, _fingerprint(url)) == []
        assert _leftovers(url) == []
        assert migrate.current(restore_project, url) == (R2,)


def test_a_value_without_its_referent_is_refused_before_any_change(
    lossless_server: Server, restore_project: Project, stashed: str
) -> None:
    with copy_of(lossless_server, stashed) as url:
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute("DELETE FROM goals WHERE id = 2")  # stashed values point to it
        before = _fingerprint(url)
        with pytest.raises(DataRefusedError, match="items"):
            migrate.downgrade(restore_project, url, R1, x=ONLINE)
        assert fingerprint_diff(before, _fingerprint(url)) == []
        assert _leftovers(url) == []


def test_a_table_with_user_triggers_is_refused_online(
    lossless_server: Server, restore_project: Project, stashed: str
) -> None:
    with copy_of(lossless_server, stashed) as url:
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute(
                "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
                " $$BEGIN RETURN NEW; END$$"
            )
            conn.execute(
                "CREATE TRIGGER touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch()"
            )
        before = _fingerprint(url)
        with pytest.raises(UsageError, match="items has enabled triggers"):
            migrate.downgrade(restore_project, url, R1, x=ONLINE)
        assert fingerprint_diff(before, _fingerprint(url)) == []
        assert _leftovers(url) == []


# -- writes during the online restore ---------------------------------------------------------

#: Old code's writes, made only while the mirror trigger is there (after the contract the
#: application writes the columns: a write of the key then is a bug of the application).
_WHILE_MIRRORED = f"EXISTS (SELECT FROM pg_trigger WHERE tgname = '{MIRROR}')"


@dataclass
class Writer:
    """An application connection writing the legacy keys of items of its own (and adding
    items), keeping what each item should end with: ``(goal_id, code, note)``."""

    url: str
    number: int
    of: int
    expected: dict[int, tuple[int | None, str, int | None]]
    stop: threading.Event
    committed: int = 0
    error: BaseException | None = None
    mine: dict[int, tuple[int | None, str, int | None]] = field(default_factory=dict)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # handed to the test
            self.error = exc

    def _loop(self) -> None:
        rng = random.Random(self.number)
        ids = [i for i in self.expected if i % self.of == self.number]
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            for step in range(400):
                if self.stop.is_set() or not self._one(conn, rng, ids, step):
                    return
                self.committed += 1

    def _one(
        self, conn: psycopg.Connection[Any], rng: random.Random, ids: list[int], step: int
    ) -> bool:
        action = rng.choice(("goal", "code", "note", "insert"))
        if action == "insert":
            item = 10_000 + self.number * 1000 + step
            goal = rng.choice((None, 1, 3, 5))
            meta = {"legacy_code": f"w{item}", "w": step}
            if goal is not None:
                meta["legacy_goal_id"] = goal
            done = conn.execute(
                "INSERT INTO items (id, metadata) SELECT %s, %s::jsonb WHERE " + _WHILE_MIRRORED,
                (item, psycopg.types.json.Jsonb(meta)),
            ).rowcount
            if done:
                ids.append(item)
                self.mine[item] = (goal, f"w{item}", step)
            return bool(done)
        item = rng.choice(ids)
        goal, code, note = self.mine[item] if item in self.mine else self.expected[item]
        if action == "goal":
            goal = rng.choice((1, 2, 4))
            change = {"legacy_goal_id": goal}
        elif action == "code":
            code = f"x{item}-{step}"
            change = {"legacy_code": code}
        else:
            note = step
            change = {"w": step}
        done = conn.execute(
            "UPDATE items SET metadata = coalesce(metadata, '{}') || %s::jsonb"  # noqa: S608
            " WHERE id = %s AND " + _WHILE_MIRRORED,
            (psycopg.types.json.Jsonb(change), item),
        ).rowcount
        if done:
            self.mine[item] = (goal, code, note)
        return bool(done)


def _stashed_values(url: str) -> dict[int, tuple[int | None, str, int | None]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return {
            r[0]: (r[1], r[2], None)
            for r in conn.execute(
                "SELECT id, (metadata ->> 'legacy_goal_id')::int, metadata ->> 'legacy_code'"
                " FROM items"
            )
        }


def test_writes_during_an_online_restore_are_all_reflected(
    lossless_server: Server, restore_project: Project, stashed: str
) -> None:
    with copy_of(lossless_server, stashed) as url:
        expected = _stashed_values(url)
        stop = threading.Event()
        writers = [Writer(url, n, 3, expected, stop) for n in range(3)]
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            # The old code writes only while the restore runs (see _WHILE_MIRRORED): a
            # first batch of the backfill is under way when the writers start.
            threads = [threading.Thread(target=w.run) for w in writers]
            x = {**ONLINE, "online_batch_size": "3"}
            runner = threading.Thread(
                target=migrate.downgrade, args=(restore_project, url, R1), kwargs={"x": x}
            )
            runner.start()
            while not conn.execute(f"SELECT {_WHILE_MIRRORED}").fetchone()[0]:  # type: ignore[index]
                assert runner.is_alive()
            for thread in threads:
                thread.start()
            runner.join()
            stop.set()
            for thread in threads:
                thread.join()
            assert [w.error for w in writers] == [None, None, None]
            assert sum(w.committed for w in writers) > 0
            for writer in writers:
                expected.update(writer.mine)
            found = {
                r[0]: (r[1], r[2], r[3])
                for r in conn.execute(
                    "SELECT id, goal_id, code, (metadata ->> 'w')::int FROM items"
                )
            }
            assert found == expected
            assert conn.execute(
                "SELECT count(*) FROM items"
                " WHERE metadata ?| array['legacy_goal_id', 'legacy_code']"
            ).fetchone() == (0,)
        assert migrate.current(restore_project, url) == (R1,)
        assert _leftovers(url) == []


def test_what_else_the_stash_holds_stays(
    lossless_server: Server, restore_project: Project, stashed: str
) -> None:
    """The last restore of a JSONB drops the stash only when nothing else is in it."""
    other = (
        "INSERT INTO lossless_stash (kind, table_name, column_name, row_key)"
        " VALUES ('link', 'elsewhere', 'x', '[1]'), ('jsonb_was_null', 'elsewhere', 'm', '[2]')"
    )
    with copy_of(lossless_server, stashed) as plain, copy_of(lossless_server, stashed) as url:
        for database in (plain, url):
            with psycopg.connect(libpq_url(database)) as conn:
                conn.execute(other)
        migrate.downgrade(restore_project, plain, R1)
        migrate.downgrade(restore_project, url, R1, x=ONLINE)
        assert fingerprint_diff(_fingerprint(plain), _fingerprint(url)) == []
        with psycopg.connect(libpq_url(url)) as conn:
            kept = conn.execute("SELECT kind, table_name FROM lossless_stash ORDER BY 1")
            assert kept.fetchall() == [("jsonb_was_null", "elsewhere"), ("link", "elsewhere")]
