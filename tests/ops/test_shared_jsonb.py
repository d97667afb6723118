"""Several columns stashed into the same JSONB: restored in any order, exactly.

That a JSONB was SQL NULL before a stash belongs to the row's JSONB, not to the column
whose stash happened to write into it first: whatever order the columns come back in,
NULL comes back NULL, ``{}`` stays ``{}`` and other keys are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from tests.ops.helpers import execute, rows, run_ops, state_of
from tests.ops.schemas import plans

ORDERS = [("a", "b"), ("b", "a")]

# Every combination of (a, b) value present or NULL, with metadata NULL, {} or holding keys.
SHARED = """
CREATE TABLE t (id int PRIMARY KEY, a int, b text, metadata jsonb);
INSERT INTO t VALUES
    (1, 1, 'x', NULL), (2, 2, NULL, NULL), (3, NULL, 'y', NULL), (4, NULL, NULL, NULL),
    (5, 5, 'z', '{}'), (6, 6, NULL, '{}'), (7, NULL, 'w', '{}'), (8, NULL, NULL, '{}'),
    (9, 9, 'v', '{"keep": [1, {"n": null}], "ü": "✓"}'), (10, NULL, 'u', '{"keep": 0}');
"""


def stash(column: str) -> Callable[[Any], Any]:
    return lambda op: op.stash_column_in_jsonb("t", column)


def restore(column: str) -> Callable[[Any], Any]:
    return lambda op: op.restore_column_from_jsonb("t", column)


def stash_is_gone(conn: Connection) -> bool:
    [(gone,)] = rows(conn, "SELECT to_regclass('lossless_stash') IS NULL")
    return bool(gone)


@pytest.mark.parametrize("stash_order", ORDERS, ids="stash {0[0]}, {0[1]}".format)
@pytest.mark.parametrize("restore_order", ORDERS, ids="restore {0[0]}, {0[1]}".format)
def test_two_columns_in_one_jsonb_come_back_in_any_order(
    conn: Connection,
    lossless_engine: Engine,
    stash_order: tuple[str, str],
    restore_order: tuple[str, str],
) -> None:
    execute(conn, SHARED)
    before = state_of(conn)
    for column in stash_order:
        run_ops(lossless_engine, stash(column))
    assert rows(conn, "SELECT id FROM t WHERE metadata IS NULL ORDER BY id") == [(4,)]

    first, second = restore_order
    [back] = run_ops(lossless_engine, restore(first))

    # the other column's key keeps rows 1 (NULL before) and 5 (`{}` before) objects for now
    kept = rows(conn, "SELECT id, metadata ?| array['legacy_a', 'legacy_b'] FROM t ORDER BY id")
    holds_second = {1, 5, 9} | ({3, 7, 10} if second == "b" else {2, 6})
    assert [i for i, holds in kept if holds] == sorted(holds_second)
    assert back.counts["restored"] == (6 if first == "b" else 5)

    run_ops(lossless_engine, restore(second))

    assert rows(conn, "SELECT id, metadata::text FROM t WHERE id IN (1, 2, 3, 5) ORDER BY id") == [
        (1, None),
        (2, None),
        (3, None),
        (5, "{}"),
    ]
    assert state_of(conn) == before
    assert stash_is_gone(conn)


def test_keys_added_by_the_application_survive_any_order(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(conn, SHARED)
    run_ops(lossless_engine, stash("a"))
    run_ops(lossless_engine, stash("b"))
    execute(conn, """UPDATE t SET metadata = metadata || '{"added": 1}' WHERE id IN (1, 2)""")

    run_ops(lossless_engine, restore("a"))
    run_ops(lossless_engine, restore("b"))

    # rows that were NULL keep what the application wrote since; the marks are forgotten
    assert rows(conn, "SELECT id, metadata::text FROM t WHERE id <= 4 ORDER BY id") == [
        (1, '{"added": 1}'),
        (2, '{"added": 1}'),
        (3, None),
        (4, None),
    ]
    assert stash_is_gone(conn)


def test_restashing_after_a_partial_restore_keeps_the_null(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(conn, SHARED)
    before = state_of(conn)
    for step in (stash("a"), stash("b"), restore("a"), stash("a"), restore("b"), restore("a")):
        run_ops(lossless_engine, step)
    assert state_of(conn) == before
    assert stash_is_gone(conn)


def test_a_null_the_application_replaced_by_an_object_stays_an_object(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(conn, SHARED)
    run_ops(lossless_engine, stash("a"))
    run_ops(lossless_engine, stash("b"))
    run_ops(lossless_engine, restore("a"))
    assert rows(conn, "SELECT metadata FROM t WHERE id = 2") == [(None,)]  # NULL again
    execute(conn, "UPDATE t SET metadata = '{}' WHERE id = 2")  # the application's {}

    run_ops(lossless_engine, stash("a"))  # row 2's old mark must not apply to this stash
    run_ops(lossless_engine, restore("a"))
    run_ops(lossless_engine, restore("b"))

    assert rows(conn, "SELECT a, metadata::text FROM t WHERE id = 2") == [(2, "{}")]
    assert stash_is_gone(conn)


# move_fk_to_child / move_fk_to_parent share the building block with stash / restore.
OWNER = """
ALTER TABLE migrations_mig ADD COLUMN owner_id int;
UPDATE migrations_mig SET owner_id = n FROM (
    SELECT mig_id, split_part(mig_name, ' ', 2)::int AS n FROM migrations_mig) AS m
WHERE migrations_mig.mig_id = m.mig_id AND m.n % 24 <> 0;
"""
MOVE: dict[str, Any] = dict(child_fk="mig_id", jsonb_column="mig_metadata", key="legacy_plm_id")


def to_child(op: Any) -> Any:
    return op.move_fk_to_child("migrations_mig", "plm_id", child="iterations_ite", **MOVE)


def to_parent(op: Any) -> Any:
    return op.move_fk_to_parent("iterations_ite", "plm_id", parent="migrations_mig", **MOVE)


def stash_owner(op: Any) -> Any:
    return op.stash_column_in_jsonb("migrations_mig", "owner_id", jsonb_column="mig_metadata")


def restore_owner(op: Any) -> Any:
    return op.restore_column_from_jsonb("migrations_mig", "owner_id", jsonb_column="mig_metadata")


@pytest.mark.parametrize(
    "steps",
    [
        (stash_owner, to_child, restore_owner, to_parent),
        (to_child, stash_owner, to_parent, restore_owner),
        (stash_owner, to_child, to_parent, restore_owner),
        (to_child, stash_owner, restore_owner, to_parent),
    ],
    ids=["stash-move-restore-back", "move-stash-back-restore", "nested", "nested-move-first"],
)
def test_move_and_stash_share_a_jsonb_in_any_order(
    conn: Connection, lossless_engine: Engine, steps: tuple[Callable[[Any], Any], ...]
) -> None:
    plans(conn, migrations=24)
    execute(conn, OWNER)
    before = state_of(conn)
    # childless migrations with NULL metadata, with and without an owner: the hard cases
    assert rows(
        conn,
        "SELECT count(*), count(owner_id) FROM migrations_mig m WHERE mig_metadata IS NULL"
        " AND NOT EXISTS (SELECT FROM iterations_ite i WHERE i.mig_id = m.mig_id)",
    ) == [(2, 1)]

    for step in steps:
        run_ops(lossless_engine, step)

    assert state_of(conn) == before
    assert stash_is_gone(conn)
