"""The set-based "first row per group" of online mode's batches and measures agrees with
the one-row-at-a-time lookup its triggers use, where a rewrite is most likely to differ:
ties in the order columns (the value breaks them), NULL order values (last ascending,
first descending, as ``ORDER BY`` puts them), owners and parents without any row, and
many rows per owner. Batches run over key ranges as online mode's backfill does.

``collapse_junction_to_fk`` (``toolkit.sql.collapse_online.FirstLinks``) and
``move_fk_to_parent`` (``toolkit.sql.family_up_online.UpMirror``) on hand-made tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.sql.collapse_online import FirstLinks
from toolkit.sql.family import Family
from toolkit.sql.family_up_online import UpMirror
from toolkit.sql.idents import render
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.junction import JunctionShape
from toolkit.sql.stash import ensure_stash

ORDERS = [("rank", "created_at"), ("-rank",), ("created_at", "-rank"), ("-created_at",)]
OWNERS = 60
#: Rows per owner by ``id % 6``: none, one, two tied on both order columns, many (25) with
#: NULL ranks among them, three with NULL created_at, many tied on rank only.
ROWS = """
INSERT INTO {rows} ({fk}, {value}, rank, created_at)
SELECT o.id, v.value, v.rank, v.created_at FROM generate_series(1, {owners}) AS o(id)
CROSS JOIN LATERAL (
  SELECT (o.id * 7 + n * 13) % 50 AS value,
         CASE WHEN o.id % 6 = 3 AND n % 4 = 0 THEN NULL
              WHEN o.id % 6 IN (2, 5) THEN 1 ELSE n % 5 END AS rank,
         CASE WHEN o.id % 6 = 4 AND n < 3 THEN NULL
              WHEN o.id % 6 = 2 THEN timestamptz '2024-01-01'
              ELSE timestamptz '2024-01-01' + (n % 3) * interval '1 day' END AS created_at
  FROM generate_series(1, CASE o.id % 6 WHEN 0 THEN 0 WHEN 1 THEN 1 WHEN 2 THEN 2
                                     WHEN 3 THEN 25 WHEN 4 THEN 3 ELSE 12 END) AS n
) AS v
"""


@pytest.fixture
def db(lossless_server: Server) -> Iterator[psycopg.Connection[Any]]:
    with (
        scratch_database(lossless_server.url, prefix="lossless_first_rows") as url,
        psycopg.connect(libpq_url(url), autocommit=True) as conn,
    ):
        yield conn


def in_batches(conn: psycopg.Connection[Any], statement: Any, size: int = 7) -> None:
    """``statement(where)`` over owner keys ``t.id`` in ranges of ``size``."""
    for low in range(0, OWNERS + size, size):
        where = sql.SQL("t.id > {} AND t.id <= {}").format(low, low + size)
        conn.execute(statement(where))


def count(conn: psycopg.Connection[Any], query: Any) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("order_by", ORDERS)
def test_collapse_batches_and_missing_agree_with_the_trigger(
    db: psycopg.Connection[Any], order_by: tuple[str, ...]
) -> None:
    db.execute("CREATE TABLE owners (id int PRIMARY KEY, link int)")
    db.execute(
        "CREATE TABLE links (id serial PRIMARY KEY, owner_id int, referent int,"
        " rank int, created_at timestamptz, UNIQUE (owner_id, referent))"
    )
    db.execute("INSERT INTO owners (id) SELECT generate_series(1, %s)", (OWNERS,))
    fill = ROWS.format(rows="links", fk="owner_id", value="referent", owners=OWNERS)
    db.execute(fill)
    shape = JunctionShape("links", "owners", "link", "owner_id", "referent", "id")
    links = FirstLinks(shape, order_by)
    in_batches(db, links.fill)
    trigger = links.first_of(sql.SQL("t.id"))
    found = db.execute(
        sql.SQL("SELECT t.id, t.link, {} FROM owners AS t ORDER BY t.id").format(trigger)
    ).fetchall()
    assert [(i, link) for i, link, _ in found] == [(i, first) for i, _, first in found]
    assert all(link is None for i, link, _ in found if i % 6 == 0)
    assert sum(link is not None for _, link, _ in found) == OWNERS - OWNERS // 6
    assert count(db, links.count_missing()) == 0
    # Owner 2: both links tie on rank and created_at; the smaller referent is first.
    tied = db.execute("SELECT min(referent) FROM links WHERE owner_id = 2").fetchone()
    assert tied is not None and found[1][1] == tied[0]
    db.execute("UPDATE owners SET link = link + 1000 WHERE id IN (3, 5)")
    db.execute("UPDATE owners SET link = 7 WHERE id = 6")  # an owner without links
    assert count(db, links.count_missing()) == 3


def _family_tables(db: psycopg.Connection[Any]) -> None:
    db.execute("CREATE TABLE parents (id int PRIMARY KEY, v int, kept int, meta jsonb)")
    db.execute(
        "CREATE TABLE children (id serial PRIMARY KEY, parent_id int REFERENCES parents,"
        " v int, rank int, created_at timestamptz)"
    )
    db.execute("CREATE INDEX ON children (parent_id)")
    # Every fourth parent kept a value of its own (the stash's): used when it has no child.
    db.execute(render(ensure_stash(None)))
    db.execute(
        "INSERT INTO parents (id, meta) SELECT p, CASE WHEN p %% 4 = 0"
        " THEN jsonb_build_object('k', p * 100) END FROM generate_series(1, %s) AS p",
        (OWNERS,),
    )
    db.execute(ROWS.format(rows="children", fk="parent_id", value="v", owners=OWNERS))
    db.execute("UPDATE children SET v = NULL WHERE id % 11 = 0")  # NULL values tie too


@pytest.mark.parametrize("order_by", ORDERS)
def test_move_up_batches_and_measures_agree_with_the_trigger(
    db: psycopg.Connection[Any], order_by: tuple[str, ...]
) -> None:
    _family_tables(db)
    family = Family("parents", "id", "children", "parent_id")
    slot = JsonbSlot("parents", "v", "meta", "k", ("id",))
    mirror = UpMirror(family, slot, "v", order_by, "int")
    db.execute(
        sql.SQL("ALTER TABLE parents RENAME COLUMN kept TO {}").format(sql.Identifier(mirror.kept))
    )
    in_batches(db, lambda where: sql.SQL(";\n").join(mirror.batch(where)))
    found = db.execute(
        sql.SQL("SELECT t.id, t.v, COALESCE({}, t.{}), {} FROM parents AS t ORDER BY t.id").format(
            mirror.first_child("t"), sql.Identifier(mirror.kept), mirror.first_child("t")
        )
    ).fetchall()
    assert [(i, v) for i, v, _, _ in found] == [(i, want) for i, _, want, _ in found]
    assert [v for i, v, _, _ in found if i % 6 == 0] == [
        i * 100 if i % 4 == 0 else None for i in range(6, OWNERS + 1, 6)
    ]
    restored = sum(first is None and want is not None for _, _, want, first in found)
    overridden = sum(
        first is not None and i % 4 == 0 and first != i * 100 for i, _, _, first in found
    )
    assert count(db, mirror.count_restored()) == restored > 0
    assert count(db, mirror.count_overridden()) == overridden > 0
    assert count(db, mirror.count_missing()) == 0
    assert count(db, mirror.count_disagreeing()) == count(
        db,
        sql.SQL(
            "SELECT count(*) FROM children AS c JOIN parents AS t ON t.id = c.parent_id"
            " WHERE c.v IS DISTINCT FROM {}"
        ).format(mirror.first_child("t")),
    )
    db.execute("UPDATE parents SET v = coalesce(v, 0) + 1000 WHERE id IN (3, 4)")
    db.execute("UPDATE parents SET v = 7 WHERE id = 6")  # no child, no kept value
    assert count(db, mirror.count_missing()) == 3
