"""move_fk_to_child / move_fk_to_parent (ADR 024) on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine

from tests.ops.helpers import columns, constraints, execute, rows, run, run_ops, state_of
from tests.ops.schemas import plans, uid
from toolkit.errors import DataRefusedError
from toolkit.ops import MoveFkToChildOp, MoveFkToParentOp

DOWN: dict[str, Any] = dict(
    child="iterations_ite", child_fk="mig_id", jsonb_column="mig_metadata", key="legacy_plm_id"
)
UP: dict[str, Any] = dict(
    parent="migrations_mig", child_fk="mig_id", jsonb_column="mig_metadata", key="legacy_plm_id"
)


def to_child(op: Any) -> Any:
    return op.move_fk_to_child("migrations_mig", "plm_id", **DOWN)


def to_parent(**extra: Any) -> Callable[[Any], Any]:
    return lambda op: op.move_fk_to_parent("iterations_ite", "plm_id", **{**UP, **extra})


def plan_of(i: int) -> str:
    return uid(f"plan{i % 4 + 1}")


def plan_of_migration(conn: Connection, label: str) -> str:
    [(plan,)] = rows(
        conn, "SELECT plm_id::text FROM migrations_mig WHERE mig_id = :m", m=uid(label)
    )
    return str(plan)


def test_move_down_then_up_round_trip(conn: Connection, lossless_engine: Engine) -> None:
    plans(conn, migrations=12)
    before = state_of(conn)
    op = MoveFkToChildOp("migrations_mig", "plm_id", **DOWN)
    assert op.describe().startswith("Move migrations_mig.plm_id down to iterations_ite.plm_id")
    assert isinstance(op.reverse(), MoveFkToParentOp)

    [down] = run_ops(lossless_engine, to_child)

    # migrations i % 3 == 1 have one iteration, i % 3 == 2 two, i % 3 == 0 none
    assert down.counts == {"moved": 12, "stashed": 4, "lost": 0}
    assert rows(
        conn,
        "SELECT i.ite_name, i.plm_id::text FROM iterations_ite i ORDER BY 1",
    ) == sorted((f"ite {i}.{j}", plan_of(i)) for i in range(1, 13) for j in (1, 2) if j <= i % 3)
    meta = dict(rows(conn, "SELECT mig_name, mig_metadata::text FROM migrations_mig"))
    assert meta["mig 3"] == f'{{"deep": {{"ü": [true]}}, "legacy_plm_id": "{plan_of(3)}"}}'
    assert meta["mig 12"] == f'{{"legacy_plm_id": "{plan_of(12)}"}}'  # was NULL
    assert meta["mig 9"] == f'{{"legacy_plm_id": "{plan_of(9)}"}}'  # was {}
    assert meta["mig 1"] == "{}"  # has an iteration: untouched
    assert ("plm_id", "uuid", False, None) in columns(conn, "iterations_ite")
    assert (
        "iterations_ite_plm_id_fkey",
        "FOREIGN KEY (plm_id) REFERENCES plans_master_plm(plm_id)",
    ) in constraints(conn, "iterations_ite")
    assert "plm_id" not in {c[0] for c in columns(conn, "migrations_mig")}

    [up] = run_ops(lossless_engine, to_parent())

    assert up.counts == {"moved": 8, "restored": 4, "lost": 0}
    # where the data came from
    assert (down.loss_table, down.column) == ("migrations_mig", "plm_id")
    assert (up.loss_table, up.column) == ("iterations_ite", "plm_id")
    assert state_of(conn) == before


def test_reverse_object_round_trip(conn: Connection, lossless_engine: Engine) -> None:
    plans(conn, migrations=6)
    before = state_of(conn)
    forward = MoveFkToChildOp("migrations_mig", "plm_id", **DOWN)
    run_ops(lossless_engine, lambda op: op.invoke(forward))
    run_ops(lossless_engine, lambda op: op.invoke(forward.reverse()))
    assert state_of(conn) == before


def test_first_child_wins_and_the_others_are_declared_lost(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=5)
    run_ops(lossless_engine, to_child)
    # mig 2 has two iterations tied on created_at: the smaller ite_id decides
    first, second = sorted([uid("ite2.1"), uid("ite2.2")])
    set_plan = "UPDATE iterations_ite SET plm_id = :p WHERE ite_id = :i"
    run(conn, set_plan, p=uid("plan1"), i=first)
    run(conn, set_plan, p=uid("plan2"), i=second)

    [up] = run_ops(lossless_engine, to_parent())

    assert up.lost == 1
    assert any("lost (declared)" in n for n in up.notes)
    assert plan_of_migration(conn, "mig2") == uid("plan1")


def test_explicit_order_decides(conn: Connection, lossless_engine: Engine) -> None:
    plans(conn, migrations=5)
    run_ops(lossless_engine, to_child)
    second = max(uid("ite2.1"), uid("ite2.2"))
    run(conn, "UPDATE iterations_ite SET plm_id = :p WHERE ite_id = :i", p=uid("plan4"), i=second)

    run_ops(lossless_engine, to_parent(order_by=("created_at", "-ite_id")))

    assert plan_of_migration(conn, "mig2") == uid("plan4")


def test_parent_with_neither_child_nor_stash_is_refused(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    run_ops(lossless_engine, to_child)
    orphan = uid("late migration")
    run(
        conn,
        """INSERT INTO migrations_mig (mig_id, mig_name, mig_metadata)"""
        """ VALUES (:m, 'late', '{"owner": "x"}')""",
        m=orphan,
    )
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, to_parent())

    error = refused.value
    assert (error.table, error.column, error.count, error.samples) == (
        "migrations_mig",
        "plm_id",
        1,
        (orphan,),
    )
    assert state_of(conn) == before


def test_move_to_child_refuses_key_already_present(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    run(
        conn,
        """UPDATE migrations_mig SET mig_metadata = '{"legacy_plm_id": 1}' WHERE mig_id = :m""",
        m=uid("mig1"),
    )
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, to_child)

    assert (refused.value.column, refused.value.count, refused.value.samples) == (
        "mig_metadata",
        1,
        (uid("mig1"),),
    )
    assert state_of(conn) == before


def test_move_to_child_refuses_non_object_metadata_of_childless_parent(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    run(
        conn,
        "UPDATE migrations_mig SET mig_metadata = '[1, 2]' WHERE mig_id IN (:a, :b)",
        a=uid("mig3"),
        b=uid("mig1"),
    )
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, to_child)

    # mig 1 has an iteration (nothing to stash), mig 3 has none
    assert (refused.value.count, refused.value.samples) == (1, (uid("mig3"),))
    assert state_of(conn) == before


def test_new_child_of_a_stashed_parent_wins_and_counts_as_lost(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    run_ops(lossless_engine, to_child)
    mig3 = uid("mig3")  # no iteration: its plan was stashed
    run(
        conn,
        "INSERT INTO iterations_ite (mig_id, ite_name, ite_type, plm_id)"
        " VALUES (:m, 'new', 'DR', :p)",
        m=mig3,
        p=uid("plan1"),
    )

    [up] = run_ops(lossless_engine, to_parent())

    assert up.lost == 1
    assert rows(
        conn,
        "SELECT plm_id::text, mig_metadata::text FROM migrations_mig WHERE mig_id = :m",
        m=mig3,
    ) == [(uid("plan1"), '{"deep": {"ü": [true]}}')]


def test_move_to_child_refuses_children_of_a_parent_without_value(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    execute(conn, "ALTER TABLE migrations_mig ALTER COLUMN plm_id DROP NOT NULL")
    run(
        conn,
        "UPDATE migrations_mig SET plm_id = NULL WHERE mig_id IN (:a, :b)",
        a=uid("mig1"),
        b=uid("mig3"),
    )
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, to_child)

    # mig 1 has an iteration that could not get a plan; mig 3 has none (nothing to refuse)
    error = refused.value
    assert (error.table, error.column, error.count, error.samples) == (
        "migrations_mig",
        "plm_id",
        1,
        (uid("mig1"),),
    )
    assert state_of(conn) == before


def test_move_to_parent_refuses_a_stashed_plan_that_is_gone(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    run_ops(lossless_engine, to_child)
    # mig 3 has no iteration: its plan (plan 4) sits in its metadata; delete that plan
    gone = uid("plan4")
    run(conn, "DELETE FROM iterations_ite WHERE plm_id = :p", p=gone)
    run(conn, "DELETE FROM plans_master_plm WHERE plm_id = :p", p=gone)
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, to_parent(referent_table="plans_master_plm"))

    error = refused.value
    assert (error.table, error.column) == ("migrations_mig", "mig_metadata")
    assert uid("mig3") in error.samples
    assert "plans_master_plm" in str(error)
    assert state_of(conn) == before


def test_refusal_by_the_foreign_key_undoes_the_move_first(
    conn: Connection, lossless_engine: Engine
) -> None:
    plans(conn, migrations=6)
    run_ops(lossless_engine, to_child)
    gone = uid("plan4")  # the stashed plan of mig 3, which has no iteration
    run(conn, "DELETE FROM iterations_ite WHERE plm_id = :p", p=gone)
    run(conn, "DELETE FROM plans_master_plm WHERE plm_id = :p", p=gone)
    before = state_of(conn)

    with lossless_engine.begin() as tx:
        op = Operations(MigrationContext.configure(tx))
        with pytest.raises(DataRefusedError) as refused:
            to_parent()(op)
        assert refused.value.samples == (uid("mig3"),)
        # the revision's transaction goes on, with nothing of the refused move in it
        assert state_of(tx) == before
