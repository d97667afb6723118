"""stash_column_in_jsonb / restore_column_from_jsonb on real PostgreSQL: exactness first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import Connection, Engine

from tests.ops.helpers import (
    columns,
    constraints,
    execute,
    rows,
    run,
    run_ops,
    state_of,
    table_rows,
)
from tests.ops.schemas import goals_and_targets, uid
from toolkit.errors import DataRefusedError, UsageError
from toolkit.ops import RestoreColumnFromJsonbOp, StashColumnInJsonbOp


def stash(table: str, column: str, **kw: Any) -> Callable[[Any], Any]:
    return lambda op: op.stash_column_in_jsonb(table, column, **kw)


def restore(table: str, column: str, **kw: Any) -> Callable[[Any], Any]:
    return lambda op: op.restore_column_from_jsonb(table, column, **kw)


def test_stash_then_restore_round_trip(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=12)
    before = state_of(conn)
    op = StashColumnInJsonbOp("commitments", "goal_id")
    assert op.describe() == "Stash commitments.goal_id in metadata['legacy_goal_id']"
    assert isinstance(op.reverse(), RestoreColumnFromJsonbOp)

    [result] = run_ops(lossless_engine, stash("commitments", "goal_id"))

    assert result.counts == {"stashed": 8, "lost": 0}  # rows 3, 6, 9, 12 hold NULL
    assert (result.loss_table, result.column) == ("commitments", "goal_id")
    assert "dropped foreign key commitments_goal_id_fkey" in result.notes
    meta = dict(rows(conn, "SELECT title, metadata::text FROM commitments"))
    g = {i: uid(f"goal{i % 5 + 1}") for i in range(1, 13)}
    assert meta["commitment 1"] == f'{{"legacy_goal_id": "{g[1]}"}}'  # was {}
    assert meta["commitment 2"] == f'{{"n": 2, "source": "import", "legacy_goal_id": "{g[2]}"}}'
    assert meta["commitment 3"] == '{"nested": {"list": [1, null], "ключ": "värde ✓"}}'
    assert meta["commitment 4"] == f'{{"legacy_goal_id": "{g[4]}"}}'  # was NULL
    assert meta["commitment 12"] is None  # NULL value, NULL JSONB: untouched
    assert "goal_id" not in {c[0] for c in columns(conn, "commitments")}

    [back] = run_ops(
        lossless_engine,
        restore(
            "commitments",
            "goal_id",
            type_="uuid",
            foreign_key=("client_goals", "id"),
            fk_name="commitments_goal_id_fkey",
        ),
    )

    assert back.counts == {"restored": 8, "lost": 0}
    assert (back.loss_table, back.column) == ("commitments", "goal_id")
    assert state_of(conn) == before
    assert rows(conn, "SELECT to_regclass('lossless_stash') IS NULL") == [(True,)]


def test_restore_takes_type_and_fk_from_the_record(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=8)
    before = state_of(conn)
    forward = StashColumnInJsonbOp("commitments", "goal_id")

    run_ops(lossless_engine, lambda op: op.invoke(forward))
    run_ops(lossless_engine, lambda op: op.invoke(forward.reverse()))

    assert state_of(conn) == before


EXACT_VALUES = [
    ("uuid", "'6f1c8e3a-0000-4000-8000-0000000000ff'"),
    ("timestamp without time zone", "'2024-02-29 23:59:59.123456'"),
    ("timestamp with time zone", "'2024-06-30 12:00:00.5+05:30'"),
    ("timestamp(3) without time zone", "'infinity'"),
    ("numeric", "1.50"),
    ("numeric(12,4)", "-0.0100"),
    ("numeric", "'NaN'"),
    ("text", "E'multi\\nline ''quoted'' \\\\ back ✓ {\"a\": 1}'"),
    ("character varying(5)", "'ab '"),
    ("boolean", "false"),
    ("integer", "-2147483648"),
    ("bigint", "9223372036854775807"),
    ("double precision", "0.1"),
    ("double precision", "1e300"),
    ("double precision", "'-Infinity'"),
    ("real", "3.4028235e38"),
    ("date", "'0001-01-01 BC'"),
    ("interval", "'1 year 2 mons 3 days 04:05:06.7'"),
    ("integer[]", "'{1,NULL,3}'"),
    ("text[]", '\'{"a,b",""}\''),
    ("jsonb", '\'{"k": [1, "x"]}\''),
    ("jsonb", "'\"just a string\"'"),
    ("bytea", "'\\x00ff'"),
]


@pytest.mark.parametrize(("type_text", "value"), EXACT_VALUES)
def test_values_come_back_exactly(
    conn: Connection, lossless_engine: Engine, type_text: str, value: str
) -> None:
    setup = sql.SQL(
        "CREATE TABLE t (id int PRIMARY KEY, v {type}, metadata jsonb);"
        " INSERT INTO t VALUES (1, {v}, NULL), (2, {v}, '{{}}'), (3, {v}, '{{\"other\": 1}}'),"
        " (4, NULL, NULL), (5, NULL, '{{}}')"
    ).format(type=sql.SQL(type_text), v=sql.SQL(value))
    execute(conn, setup.as_string())
    before = state_of(conn)
    text_before = rows(conn, "SELECT id, v::text FROM t ORDER BY id")

    run_ops(lossless_engine, stash("t", "v"))
    [back] = run_ops(lossless_engine, restore("t", "v", type_=type_text))

    assert back.counts["restored"] == 3
    assert rows(conn, "SELECT id, v::text FROM t ORDER BY id") == text_before
    assert state_of(conn) == before


def test_restore_type_from_sqlalchemy_type(conn: Connection, lossless_engine: Engine) -> None:
    from sqlalchemy.dialects.postgresql import NUMERIC

    execute(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, v numeric(8,3), metadata jsonb);"
        " INSERT INTO t VALUES (1, 2.500, NULL)",
    )
    before = state_of(conn)
    run_ops(lossless_engine, stash("t", "v"))
    run_ops(lossless_engine, restore("t", "v", type_=NUMERIC(8, 3)))
    assert state_of(conn) == before


def test_jsonb_changed_by_the_application_is_kept(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, v int, metadata jsonb);"
        " INSERT INTO t VALUES (1, 7, NULL), (2, 8, NULL)",
    )
    run_ops(lossless_engine, stash("t", "v"))
    execute(conn, """UPDATE t SET metadata = metadata || '{"added": true}' WHERE id = 2""")

    run_ops(lossless_engine, restore("t", "v", type_="integer"))

    # row 1 was NULL and is NULL again; row 2 got a key since, so it keeps an object
    assert rows(conn, "SELECT id, v, metadata::text FROM t ORDER BY id") == [
        (1, 7, None),
        (2, 8, '{"added": true}'),
    ]


def test_composite_primary_key(conn: Connection, lossless_engine: Engine) -> None:
    execute(
        conn,
        "CREATE TABLE t (a int, b text, v date, metadata jsonb, PRIMARY KEY (a, b));"
        " INSERT INTO t VALUES (1, 'x', '2024-01-01', NULL), (1, 'y', '2024-01-02', '{}')",
    )
    before = state_of(conn)
    run_ops(lossless_engine, stash("t", "v"))
    run_ops(lossless_engine, lambda op: op.invoke(StashColumnInJsonbOp("t", "v").reverse()))
    assert state_of(conn) == before


@pytest.mark.parametrize("bad", ['["legacy_v"]', '"text"', "42", "null"])
def test_stash_refuses_non_object_jsonb(
    conn: Connection, lossless_engine: Engine, bad: str
) -> None:
    execute(conn, "CREATE TABLE t (id int PRIMARY KEY, v int, metadata jsonb)")
    run(
        conn,
        "INSERT INTO t VALUES (1, 1, '{}'), (2, 2, CAST(:bad AS jsonb)),"
        " (3, NULL, CAST(:bad AS jsonb))",
        bad=bad,
    )
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, stash("t", "v"))

    error = refused.value
    assert (error.table, error.column, error.count, error.samples) == ("t", "metadata", 1, ("2",))
    assert "not an object" in str(error)
    assert state_of(conn) == before


def test_non_object_jsonb_without_a_value_is_left_alone(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, v int, metadata jsonb);"
        """ INSERT INTO t VALUES (1, 1, '{}'), (2, NULL, '["legacy_v"]'), (3, NULL, 'null')""",
    )
    before = state_of(conn)
    run_ops(lossless_engine, stash("t", "v"))
    run_ops(lossless_engine, restore("t", "v"))
    assert state_of(conn) == before


def test_stash_refuses_key_already_present(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=8)
    run(
        conn,
        """UPDATE commitments SET metadata = '{"legacy_goal_id": "x"}' WHERE id IN (:a, :b)""",
        a=uid("commitment3"),
        b=uid("commitment5"),
    )
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, stash("commitments", "goal_id"))

    error = refused.value
    assert (error.table, error.column, error.count) == ("commitments", "metadata", 2)
    assert set(error.samples) == {uid("commitment3"), uid("commitment5")}
    assert "already hold the key 'legacy_goal_id'" in str(error)
    assert state_of(conn) == before


def test_restore_not_null_refuses_rows_without_value(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, metadata jsonb);"
        " INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 5) i",
    )
    run_ops(lossless_engine, stash("t", "v"))
    execute(conn, "INSERT INTO t VALUES (6, '{}'), (7, NULL)")
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, restore("t", "v", type_="integer", nullable=False))

    assert (refused.value.column, refused.value.count, refused.value.samples) == (
        "v",
        2,
        ("6", "7"),
    )
    assert state_of(conn) == before

    [kept] = run_ops(
        lossless_engine, restore("t", "v", type_="integer", nullable=False, on_missing="keep_null")
    )
    assert any("left nullable" in n for n in kept.notes)
    assert ("v", "integer", True, None) in columns(conn, "t")


def test_restore_refuses_values_whose_referent_is_gone(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=6)
    run_ops(lossless_engine, stash("commitments", "goal_id"))
    gone = uid("goal2")
    run(conn, "DELETE FROM targets WHERE goal_id = :g", g=gone)
    run(conn, "DELETE FROM client_goals WHERE id = :g", g=gone)
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, restore("commitments", "goal_id"))

    error = refused.value
    assert (error.table, error.column, error.count) == ("commitments", "metadata", 1)
    assert error.samples == (uid("commitment1"),)
    assert "client_goals.id" in str(error)
    assert state_of(conn) == before


def test_refusal_by_the_foreign_key_undoes_the_restore_first(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=6)
    run_ops(lossless_engine, stash("commitments", "goal_id"))
    gone = uid("goal2")
    run(conn, "DELETE FROM targets WHERE goal_id = :g", g=gone)
    run(conn, "DELETE FROM client_goals WHERE id = :g", g=gone)
    before = state_of(conn)

    with lossless_engine.begin() as tx:
        op = Operations(MigrationContext.configure(tx))
        with pytest.raises(DataRefusedError) as refused:
            op.restore_column_from_jsonb("commitments", "goal_id")
        assert (refused.value.count, refused.value.samples) == (1, (uid("commitment1"),))
        # the revision's transaction goes on, with nothing of the refused restore in it
        assert state_of(tx) == before
        run(
            tx,
            "UPDATE commitments SET metadata = metadata - 'legacy_goal_id' WHERE id = :c",
            c=uid("commitment1"),
        )
        result = op.restore_column_from_jsonb("commitments", "goal_id")

    assert result.counts == {"restored": 3, "lost": 0}
    assert ("commitments_goal_id_fkey", "FOREIGN KEY (goal_id) REFERENCES client_goals(id)") in (
        constraints(conn, "commitments")
    )


def test_restore_without_type_or_record_is_a_usage_error(
    conn: Connection, lossless_engine: Engine
) -> None:
    execute(conn, "CREATE TABLE t (id int PRIMARY KEY, metadata jsonb)")
    with pytest.raises(UsageError, match="pass type_="):
        run_ops(lossless_engine, restore("t", "v"))


def test_stash_table_is_dropped_only_when_empty(conn: Connection, lossless_engine: Engine) -> None:
    execute(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, metadata jsonb);"
        " INSERT INTO t VALUES (1, 1, 2, NULL)",
    )
    run_ops(lossless_engine, stash("t", "a"))
    run_ops(lossless_engine, stash("t", "b"))
    run_ops(lossless_engine, restore("t", "b"))
    assert table_rows(conn, "lossless_stash") != []
    run_ops(lossless_engine, restore("t", "a"))
    assert rows(conn, "SELECT to_regclass('lossless_stash') IS NULL") == [(True,)]
    assert rows(conn, "SELECT id, a, b, metadata FROM t") == [(1, 1, 2, None)]


def test_names_and_values_with_percent_and_colon_run_online(
    conn: Connection, lossless_engine: Engine
) -> None:
    # Online statements carry no parameters: '%' and ':' in names, keys and values are text.
    execute(
        conn,
        'CREATE TABLE odd_table ("Id" int PRIMARY KEY, "select" text, "meta:data" jsonb);'
        """INSERT INTO odd_table VALUES (1, '100%s :x', NULL), (2, NULL, '{"a": "%(b)s"}')""",
    )
    before = state_of(conn)
    odd = dict(jsonb_column="meta:data", key="100% 'legacy'", primary_key="Id")

    run_ops(lossless_engine, stash("odd_table", "select", **odd))
    assert rows(conn, 'SELECT "meta:data" FROM odd_table ORDER BY "Id"') == [
        ({"100% 'legacy'": "100%s :x"},),
        ({"a": "%(b)s"},),
    ]
    run_ops(lossless_engine, restore("odd_table", "select", type_="text", **odd))
    assert state_of(conn) == before
