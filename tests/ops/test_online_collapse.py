"""``collapse_junction_to_fk`` in online mode: the migration-014 downgrade on real PostgreSQL.

The plain downgrade of the same data is the reference (full-catalog fingerprint, nothing
normalised: the junctions are gone after either). Targets have several links, some of
which sort before the one the upgrade made, some after it and some tie on ``created_at``
(the id decides), so the first link of each is the order's, not the table's. The sprint
column carried an index and a comment through the upgrade (recorded, re-created online
with ``CREATE INDEX CONCURRENTLY``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.exc import DBAPIError

from tests.cli.conftest import engine_on
from tests.ops.test_online import leftovers
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import DataRefusedError, OnlineAbortedError, UsageError
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("migration-014")
PROJECT = Project.for_scenario(SCENARIO)
ONLINE = {"online": "true", "online_batch_size": "7"}
TARGETS = 120
#: Extra links of each kind: before the upgrade's link, after it, tied with it.
EXTRA_LINKS = """
INSERT INTO target_{kind}_links (target_id, {kind}_id, created_at)
SELECT l.target_id,
       (SELECT x.id FROM {referents} AS x WHERE x.id <> l.{kind}_id ORDER BY x.id LIMIT 1),
       l.created_at + CASE n % 3 WHEN 0 THEN interval '-1 day' WHEN 1 THEN interval '1 day'
                      ELSE interval '0' END
FROM (SELECT l.*, row_number() OVER (ORDER BY l.target_id) AS n
      FROM target_{kind}_links AS l) AS l
WHERE n % 4 <> 3
"""


def add_extra_links(url: str) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        for kind, referents in (("sprint", "sprints"), ("goal", "client_goals")):
            conn.execute(EXTRA_LINKS.format(kind=kind, referents=referents))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def collapsible(lossless_server: Server) -> Iterator[str]:
    """The upgraded scenario (plain) with extra links; ``targets.sprint_id`` had an index
    and a comment before the upgrade (recorded with the column)."""
    with scratch_database(lossless_server.url, prefix="lossless_collapse_template") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, TARGETS, 3)
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute("CREATE INDEX ix_targets_sprint ON targets (sprint_id)")
            conn.execute("COMMENT ON COLUMN targets.sprint_id IS 'the sprint'")
        migrate.upgrade(PROJECT, url, SCENARIO.after)
        add_extra_links(url)
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_collapse", template=name) as url:
        yield url


def _fingerprint(url: str) -> Any:
    with engine_on(url) as engine, engine.connect() as conn:
        return fingerprint(conn)


def _leftovers(url: str) -> list[str]:
    with engine_on(url) as engine, engine.connect() as conn:
        return leftovers(conn)


def test_online_collapse_ends_as_the_plain_one(lossless_server: Server, collapsible: str) -> None:
    with (
        copy_of(lossless_server, collapsible) as plain,
        copy_of(lossless_server, collapsible) as url,
    ):
        expected = migrate.downgrade(PROJECT, plain, SCENARIO.before)
        results = migrate.downgrade(PROJECT, url, SCENARIO.before, x=ONLINE)
        assert fingerprint_diff(_fingerprint(plain), _fingerprint(url)) == []
        assert [(r.operation, r.counts, r.notes) for r in results] == [
            (r.operation, r.counts, r.notes) for r in expected
        ]
        collapses = [r.counts for r in results if r.operation == "collapse_junction_to_fk"]
        lost = TARGETS - TARGETS // 4
        assert collapses == [{"collapsed": TARGETS, "lost": lost}] * 2
        assert _leftovers(url) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.before,)
        with psycopg.connect(libpq_url(url)) as conn:
            index = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_targets_sprint'"
            )
            assert index.fetchall() == [
                ("CREATE INDEX ix_targets_sprint ON public.targets USING btree (sprint_id)",)
            ]


def test_abort_before_the_contract_gives_the_junctions_back(
    lossless_server: Server, collapsible: str
) -> None:
    with copy_of(lossless_server, collapsible) as url:
        before = _fingerprint(url)
        x = {**ONLINE, "online_retries": "0", "online_lock_timeout_ms": "50"}
        # The foreign key to client_goals cannot be added while this is held: the run
        # stops after both collapses' backfills, their columns filled.
        with psycopg.connect(libpq_url(url)) as blocker:
            blocker.execute("LOCK TABLE client_goals IN SHARE MODE")
            with pytest.raises(DBAPIError, match="lock"):
                migrate.downgrade(PROJECT, url, SCENARIO.before, x=x)
            blocker.rollback()
        with psycopg.connect(libpq_url(url)) as conn:
            filled = conn.execute("SELECT count(sprint_id), count(goal_id) FROM targets")
            assert filled.fetchone() == (TARGETS, TARGETS)
        assert "table lossless_online" in _leftovers(url)
        with pytest.raises(
            OnlineAbortedError,
            match=r"undone: Collapse junction target_goal_links.*undone: Collapse junction",
        ):
            migrate.downgrade(PROJECT, url, SCENARIO.before, x={"online": "abort"})
        assert fingerprint_diff(before, _fingerprint(url)) == []
        assert _leftovers(url) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.after,)


#: Application writes after the backfills: links that sort first, first links deleted,
#: links moved earlier, a link moved to another target (the same on both copies).
WRITES = """
INSERT INTO target_{kind}_links (id, target_id, {kind}_id, created_at)
SELECT md5(l.target_id::text || 'early')::uuid, l.target_id,
       (SELECT x.id FROM {referents} AS x ORDER BY x.id DESC LIMIT 1),
       l.created_at - interval '1 year'
FROM target_{kind}_links AS l
WHERE l.id IN (SELECT id FROM target_{kind}_links ORDER BY id LIMIT 10)
ON CONFLICT DO NOTHING;
DELETE FROM target_{kind}_links AS l WHERE l.id IN (
    SELECT DISTINCT ON (target_id) id FROM target_{kind}_links
    WHERE target_id IN (SELECT target_id FROM target_{kind}_links GROUP BY 1 HAVING count(*) > 1)
    ORDER BY target_id, created_at, id LIMIT 10);
UPDATE target_{kind}_links SET created_at = created_at - interval '3 days'
WHERE id IN (SELECT id FROM target_{kind}_links ORDER BY id DESC LIMIT 10);
UPDATE target_{kind}_links AS l
SET target_id = (SELECT min(target_id::text)::uuid FROM target_{kind}_links)
WHERE l.id IN (SELECT id FROM target_{kind}_links WHERE target_id IN (
    SELECT target_id FROM target_{kind}_links GROUP BY 1 HAVING count(*) > 1) ORDER BY id LIMIT 1)
AND NOT EXISTS (SELECT FROM target_{kind}_links AS o WHERE o.{kind}_id = l.{kind}_id
                AND o.target_id = (SELECT min(target_id::text)::uuid FROM target_{kind}_links));
"""


def test_writes_after_the_backfill_are_mirrored_as_a_plain_collapse_would_see_them(
    lossless_server: Server, collapsible: str
) -> None:
    """Stopped after both backfills (a lock on client_goals), then the same link writes
    on both copies: the online run, resumed, ends as the plain downgrade of the result."""
    with (
        copy_of(lossless_server, collapsible) as plain,
        copy_of(lossless_server, collapsible) as url,
    ):
        x = {**ONLINE, "online_retries": "0", "online_lock_timeout_ms": "50"}
        with psycopg.connect(libpq_url(url)) as blocker:
            blocker.execute("LOCK TABLE client_goals IN SHARE MODE")
            with pytest.raises(DBAPIError, match="lock"):
                migrate.downgrade(PROJECT, url, SCENARIO.before, x=x)
            blocker.rollback()
        for database in (plain, url):
            with psycopg.connect(libpq_url(database)) as conn:
                for kind, referents in (("sprint", "sprints"), ("goal", "client_goals")):
                    conn.execute(WRITES.format(kind=kind, referents=referents))  # type: ignore[arg-type]
        expected = migrate.downgrade(PROJECT, plain, SCENARIO.before)
        results = migrate.downgrade(PROJECT, url, SCENARIO.before, x=ONLINE)
        assert fingerprint_diff(_fingerprint(plain), _fingerprint(url)) == []
        assert [r.counts for r in results] == [r.counts for r in expected]
        assert _leftovers(url) == []


def test_a_target_without_link_is_refused_before_any_change(
    lossless_server: Server, collapsible: str
) -> None:
    with copy_of(lossless_server, collapsible) as url:
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute(
                "DELETE FROM target_sprint_links WHERE target_id ="
                " (SELECT min(target_id::text)::uuid FROM target_sprint_links)"
            )
        before = _fingerprint(url)
        with pytest.raises(DataRefusedError, match="targets"):
            migrate.downgrade(PROJECT, url, SCENARIO.before, x=ONLINE)
        assert fingerprint_diff(before, _fingerprint(url)) == []


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"keep_extra_links": "true"}, "with keep_extra_links .*not built yet"),
        ({"on_missing": "keep_null"}, "on_missing='keep_null'"),
    ],
)
def test_what_online_mode_does_not_do_is_refused_before_any_change(
    lossless_server: Server, collapsible: str, option: dict[str, str], message: str
) -> None:
    with copy_of(lossless_server, collapsible) as url:
        before = _fingerprint(url)
        with pytest.raises(UsageError, match=message):
            migrate.downgrade(PROJECT, url, SCENARIO.before, x={**ONLINE, **option})
        assert fingerprint_diff(before, _fingerprint(url)) == []


def test_a_junction_no_promote_made_is_refused_online_before_any_change(
    lossless_server: Server, collapsible: str
) -> None:
    """Without the column's record the plain collapse records the junction and its links for
    the promote back, which online mode does not do yet."""
    with copy_of(lossless_server, collapsible) as url:
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute(
                "DELETE FROM lossless_stash WHERE kind = 'column' AND column_name = 'sprint_id'"
            )
        before = _fingerprint(url)
        with pytest.raises(UsageError, match="a junction no promote made"):
            migrate.downgrade(PROJECT, url, SCENARIO.before, x=ONLINE)
        assert fingerprint_diff(before, _fingerprint(url)) == []


# -- writes during the online collapse -----------------------------------------------------


def _q(kind: str, statement: str) -> sql.Composed:
    """``statement`` on the ``kind`` junction: ``{links}`` its name, ``{col}`` its referent."""
    return sql.SQL(statement).format(  # type: ignore[arg-type]
        links=sql.Identifier(f"target_{kind}_links"), col=sql.Identifier(f"{kind}_id")
    )


Link = tuple[datetime, str, str]  # created_at, id, referent: the collapse's order


@dataclass
class Writer:
    """An application connection changing the links of targets of its own (every target a
    writer touches is touched by it alone) and inserting targets with their links, keeping
    each of its targets' links as it committed them."""

    url: str
    number: int
    of: int
    stop: threading.Event
    #: Shared by the writers: none writes before every one has read the rows it owns
    #: (a row another writer inserted first could otherwise fall to two writers).
    ready: threading.Barrier
    links: dict[str, dict[str, dict[str, Link]]] = field(default_factory=dict)
    committed: int = 0
    inserted: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # handed to the test
            self.error = exc

    def _loop(self) -> None:
        rng = random.Random(self.number)
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            for kind in ("sprint", "goal"):
                mine: dict[str, dict[str, Link]] = {}
                for target, link, referent, created in conn.execute(
                    _q(
                        kind,
                        "SELECT target_id::text, id::text, {col}::text, created_at FROM {links}",
                    )
                ):
                    if int(target[-2:], 16) % self.of == self.number:
                        mine.setdefault(target, {})[link] = (created, link, referent)
                self.links[kind] = mine
            referents = {
                "sprint": [r[0] for r in conn.execute("SELECT id::text FROM sprints")],
                "goal": [r[0] for r in conn.execute("SELECT id::text FROM client_goals")],
            }
            self.ready.wait(timeout=60)  # every writer has read what is its own
            owners = True
            for _ in range(4000):
                if self.stop.is_set():
                    return
                try:
                    owners = self._one(conn, rng, referents, owners)
                except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
                    return  # contracted: the old code's writes end here
                self.committed += 1

    def _one(
        self,
        conn: psycopg.Connection[Any],
        rng: random.Random,
        referents: dict[str, list[str]],
        owners: bool,
    ) -> bool:
        kind = rng.choice(("sprint", "goal"))
        mine = self.links[kind]
        target = rng.choice(sorted(mine))
        action = rng.choice(("add", "add", "delete", "earlier", "owner"))
        if action == "owner" and owners:
            return self._insert_owner(conn, rng, referents)
        if action == "add":
            row = conn.execute(
                _q(
                    kind,
                    "INSERT INTO {links} (target_id, {col}) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING id::text, created_at",
                ),
                (target, rng.choice(referents[kind])),
            ).fetchone()
            if row is not None:
                referent = conn.execute(
                    _q(kind, "SELECT {col}::text FROM {links} WHERE id = %s"),
                    (row[0],),
                ).fetchone()
                assert referent is not None
                mine[target][row[0]] = (row[1], row[0], referent[0])
        elif action == "delete" and len(mine[target]) > 1:
            link = rng.choice(sorted(mine[target]))
            conn.execute(_q(kind, "DELETE FROM {links} WHERE id = %s"), (link,))
            del mine[target][link]
        elif action == "earlier":
            link = rng.choice(sorted(mine[target]))
            row = conn.execute(
                _q(
                    kind,
                    "UPDATE {links} SET created_at = created_at - interval '2 days'"
                    " WHERE id = %s RETURNING created_at",
                ),
                (link,),
            ).fetchone()
            assert row is not None
            _, _, referent = mine[target][link]
            mine[target][link] = (row[0], link, referent)
        return True

    def _insert_owner(
        self, conn: psycopg.Connection[Any], rng: random.Random, referents: dict[str, list[str]]
    ) -> bool:
        """A target and its two links in one transaction; once the NOT NULL checks of the
        constraints phase are in place, the old code can no longer insert targets."""
        try:
            with conn.transaction():
                target = conn.execute(
                    "INSERT INTO targets (title) VALUES ('w') RETURNING id::text"
                ).fetchone()
                assert target is not None
                new: dict[str, Link] = {}
                for kind in ("sprint", "goal"):
                    row = conn.execute(
                        _q(
                            kind,
                            "INSERT INTO {links} (target_id, {col})"
                            " VALUES (%s, %s) RETURNING id::text, created_at, {col}::text",
                        ),
                        (target[0], rng.choice(referents[kind])),
                    ).fetchone()
                    assert row is not None
                    new[kind] = (row[1], row[0], row[2])
        except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation):
            return False
        for kind, link in new.items():
            self.links[kind][target[0]] = {link[1]: link}
        self.inserted += 1
        return True


def test_writes_during_an_online_collapse_are_all_reflected(
    lossless_server: Server, collapsible: str
) -> None:
    with copy_of(lossless_server, collapsible) as url:
        stop, ready = threading.Event(), threading.Barrier(3)
        writers = [Writer(url, n, 3, stop, ready) for n in range(3)]
        threads = [threading.Thread(target=w.run) for w in writers]
        for thread in threads:
            thread.start()
        try:
            while sum(w.committed for w in writers) < 30 and all(t.is_alive() for t in threads):
                stop.wait(0.01)
            during = sum(w.committed for w in writers)
            x = {**ONLINE, "online_batch_size": "3"}
            migrate.downgrade(PROJECT, url, SCENARIO.before, x=x)
            during = sum(w.committed for w in writers) - during
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert [w.error for w in writers] == [None, None, None]
        assert during > 0  # the application wrote while the downgrade ran
        assert sum(w.inserted for w in writers) > 0
        expected = {
            (kind, target, min(links.values())[2])
            for w in writers
            for kind, mine in w.links.items()
            for target, links in mine.items()
        }
        with psycopg.connect(libpq_url(url)) as conn:
            found = {
                (kind, r[0], r[1])
                for kind in ("sprint", "goal")
                for r in conn.execute(_q(kind, "SELECT id::text, {col}::text FROM targets"))
            }
        assert found == expected
        assert _leftovers(url) == []
