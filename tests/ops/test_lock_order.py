"""The order online mode's short transactions lock their tables in
(``toolkit.ops.lock_order``): referenced tables before the tables that reference them, as
an application writes a parent row before its children."""

from __future__ import annotations

import psycopg
import pytest

from tests.ops.test_online_framework import db as db  # a scratch database, autocommit
from toolkit.ops.lock_order import foreign_keys_among, referenced_order
from toolkit.ops.steps import TableLock
from toolkit.sql.idents import render
from toolkit.sql.lock_plan import referenced_tables


def _order(db: psycopg.Connection, locks: list[TableLock]) -> list[str]:
    edges = db.execute(render(foreign_keys_among(locks))).fetchall()
    return [locks[i].table for i in referenced_order(len(locks), edges)]


def test_referenced_tables_come_first_whatever_their_names(db: psycopg.Connection) -> None:
    # Named so that the name order is the reverse of the application's.
    db.execute('CREATE SCHEMA "s p"')
    db.execute('CREATE TABLE "s p"."c plans" (id int PRIMARY KEY)')
    db.execute(
        'CREATE TABLE "s p"."b Runs" (id int PRIMARY KEY,'
        ' plan int REFERENCES "s p"."c plans", again int REFERENCES "s p"."c plans",'
        ' parent int REFERENCES "s p"."b Runs")'
    )
    db.execute(
        'CREATE TABLE "s p".a_steps (id int PRIMARY KEY, run int REFERENCES "s p"."b Runs",'
        ' plan int REFERENCES "s p"."c plans")'
    )
    db.execute('CREATE TABLE "s p".unrelated (id int)')
    locks = [
        TableLock("s p", name) for name in ("a_steps", "b Runs", "c plans", "missing", "unrelated")
    ]
    assert _order(db, locks) == ["c plans", "b Runs", "a_steps", "missing", "unrelated"]


def test_a_cycle_of_foreign_keys_keeps_the_given_order(db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE x (id int PRIMARY KEY, y int)")
    db.execute("CREATE TABLE y (id int PRIMARY KEY, x int REFERENCES x)")
    db.execute("ALTER TABLE x ADD FOREIGN KEY (y) REFERENCES y")
    db.execute("CREATE TABLE z (id int PRIMARY KEY, x int REFERENCES x)")
    locks = [TableLock(None, "z"), TableLock(None, "x"), TableLock(None, "y")]
    # x and y reference each other, and z references x: the cycle is broken at x (the
    # first table another one references), then z and y are ready, in the given order.
    assert _order(db, locks) == ["x", "z", "y"]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("FOREIGN KEY (plm_id) REFERENCES plans_plm(plm_id)", [(None, "plans_plm")]),
        (
            'FOREIGN KEY ("a b", c) REFERENCES "s p"."Odd ""x"""("k 1", k2) ON DELETE CASCADE',
            [("s p", 'Odd "x"')],
        ),
        ("CHECK ((a > 0))", []),
    ],
)
def test_the_referenced_table_of_a_recorded_definition(
    definition: str, expected: list[tuple[str | None, str]]
) -> None:
    statement = f'ALTER TABLE "s p".t ADD CONSTRAINT c {definition}'
    assert referenced_tables(statement) == expected
