"""``op.run_lossless``: every check of every operation before the first change, every
table lock first in one global order, and a refusal for operations that depend on each other.

Online, what ran is read from the statements the driver was sent (an event listener on
the engine); offline, from the printed script.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from tests.ops.helpers import offline_sql, rows, run, run_ops, state_of
from tests.ops.schemas import goals_and_targets, uid
from toolkit.errors import DataRefusedError, UsageError
from toolkit.ops import (
    CollapseJunctionToFkOp,
    PromoteFkToJunctionOp,
    RestoreColumnFromJsonbOp,
    StashColumnInJsonbOp,
)
from toolkit.ops.steps import TableLock, merged_locks
from toolkit.sql.lock_plan import PRELUDE_MARK

PROMOTE = PromoteFkToJunctionOp(
    "targets",
    "goal_id",
    junction="target_goal_links",
    owner_column="target_id",
    referent_column="goal_id",
    referent_table="client_goals",
    referent_key="id",
    owner_key="id",
    unique_name="uq_target_goal",
)
COLLAPSE = CollapseJunctionToFkOp(
    "target_goal_links",
    table="targets",
    column="goal_id",
    owner_column="target_id",
    referent_column="goal_id",
    referent_table="client_goals",
    type_="uuid",
    nullable=False,
    owner_key="id",
)
STASH = StashColumnInJsonbOp("commitments", "goal_id", primary_key="id")
RESTORE = RestoreColumnFromJsonbOp(
    "commitments", "goal_id", type_="uuid", foreign_key=("client_goals", "id"), primary_key="id"
)
CHANGES = re.compile(r"^\s*(ALTER|CREATE|DROP|INSERT|UPDATE|DELETE)\b")


@pytest.fixture
def sent(lossless_engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine sends, in order."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(lossless_engine, "before_cursor_execute", record)
    yield statements
    event.remove(lossless_engine, "before_cursor_execute", record)


def first_change(statements: list[str]) -> int:
    """The index of the first statement that changes something (len when none does)."""
    return next((i for i, s in enumerate(statements) if CHANGES.match(s)), len(statements))


def promoted_state(conn: Connection) -> tuple[Any, ...]:
    """Schema, data, and the junction's links (its ids and timestamps are new each time)."""
    schema, data = state_of(conn)
    links = rows(conn, "SELECT target_id, goal_id FROM target_goal_links ORDER BY 1, 2")
    return schema, {t: v for t, v in data.items() if t != "target_goal_links"}, links


def test_batch_does_what_the_operations_do_one_by_one(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn)
    run_ops(lossless_engine, lambda op: (op.invoke(PROMOTE), op.invoke(STASH)))
    one_by_one = promoted_state(conn)
    run_ops(lossless_engine, lambda op: (op.invoke(COLLAPSE), op.invoke(RESTORE)))
    before = state_of(conn)

    results = run_ops(lossless_engine, lambda op: op.run_lossless(PROMOTE, STASH))

    assert promoted_state(conn) == one_by_one
    assert len(one_by_one[2]) == 40
    assert [(r.operation, r.counts) for r in results] == [
        ("promote_fk_to_junction", {"moved": 40, "lost": 0}),
        ("stash_column_in_jsonb", {"stashed": 27, "lost": 0}),
    ]
    assert [r.description for r in results] == [PROMOTE.describe(), STASH.describe()]
    run_ops(lossless_engine, lambda op: op.run_lossless(COLLAPSE, RESTORE))
    assert state_of(conn) == before


def test_locks_are_taken_first_in_one_global_order(
    conn: Connection, lossless_engine: Engine, sent: list[str]
) -> None:
    goals_and_targets(conn)

    run_ops(lossless_engine, lambda op: op.run_lossless(STASH, PROMOTE))

    # Every table of both operations once, in the strongest mode either needs (the stash
    # only if it exists), in one prelude before any change.
    preludes = [i for i, s in enumerate(sent) if PRELUDE_MARK in s]
    assert len(preludes) == 1 and preludes[0] < first_change(sent)
    assert re.findall(r"LOCK TABLE [^;]+ MODE", sent[preludes[0]]) == [
        "LOCK TABLE client_goals IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE commitments IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE lossless_stash IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE targets IN ACCESS EXCLUSIVE MODE",
    ]
    assert "IF to_regclass('lossless_stash') IS NOT NULL THEN" in sent[preludes[0]]
    assert merged_locks(
        [
            TableLock("b", "z"),
            TableLock(None, "y", "ACCESS EXCLUSIVE"),
            TableLock("b", "z", "ACCESS EXCLUSIVE"),
            TableLock(None, "y"),
            TableLock("a", "z"),
        ]
    ) == [
        TableLock(None, "y", "ACCESS EXCLUSIVE"),
        TableLock("a", "z"),
        TableLock("b", "z", "ACCESS EXCLUSIVE"),
    ]


def test_a_refusal_of_a_later_operation_comes_before_any_change(
    conn: Connection, lossless_engine: Engine, sent: list[str]
) -> None:
    goals_and_targets(conn, targets=6)
    run_ops(lossless_engine, lambda op: (op.invoke(PROMOTE), op.invoke(STASH)))
    run(conn, "DELETE FROM target_goal_links WHERE target_id = :t", t=uid("target2"))
    before = state_of(conn)
    sent.clear()

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, lambda op: op.run_lossless(RESTORE, COLLAPSE))

    assert (refused.value.code, refused.value.table, refused.value.count) == (
        "not-null-without-link",
        "targets",
        1,
    )
    assert first_change(sent) == len(sent), sent[first_change(sent)]
    assert state_of(conn) == before


def test_checks_a_foreign_key_would_do_run_first_too(
    conn: Connection, lossless_engine: Engine, sent: list[str]
) -> None:
    goals_and_targets(conn, targets=6)
    run(conn, "INSERT INTO client_goals (id, title) VALUES (:g, 'gone soon')", g=uid("gone"))
    run(
        conn,
        "UPDATE commitments SET goal_id = :g WHERE id = :c",
        g=uid("gone"),
        c=uid("commitment1"),
    )
    run_ops(lossless_engine, lambda op: (op.invoke(PROMOTE), op.invoke(STASH)))
    run(conn, "DELETE FROM client_goals WHERE id = :g", g=uid("gone"))
    before = state_of(conn)
    sent.clear()

    # The restore comes second: its orphan check (which a foreign key would do while it
    # validates) must run before the collapse changes anything.
    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, lambda op: op.run_lossless(COLLAPSE, RESTORE))

    assert (refused.value.code, refused.value.count, refused.value.samples) == (
        "stashed-value-without-referent",
        1,
        (uid("commitment1"),),
    )
    assert first_change(sent) == len(sent), sent[first_change(sent)]
    assert state_of(conn) == before


def test_an_operation_reading_what_an_earlier_one_changes_is_refused(
    conn: Connection, lossless_engine: Engine, sent: list[str]
) -> None:
    goals_and_targets(conn)
    before = state_of(conn)

    with pytest.raises(
        UsageError, match=r"reads target_goal_links, which 'Promote targets\.goal_id"
    ):
        run_ops(lossless_engine, lambda op: op.run_lossless(PROMOTE, COLLAPSE))

    assert first_change(sent) == len(sent)
    assert state_of(conn) == before


def test_offline_batch_prints_locks_and_guards_before_any_change() -> None:
    script = offline_sql(lambda op: op.run_lossless(STASH, PROMOTE))
    statements = [s.strip() for s in script.split(";\n\n") if s.strip()]
    start = first_change(statements)
    assert PRELUDE_MARK in statements[0] and start > 0
    assert re.findall(r"LOCK TABLE [^;]+ MODE", statements[0]) == [
        "LOCK TABLE client_goals IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE commitments IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE lossless_stash IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE targets IN ACCESS EXCLUSIVE MODE",
    ]
    guards = [i for i, s in enumerate(statements) if s.startswith("DO $lossless$\nDECLARE")]
    guards = [i for i in guards if " row(s) " in statements[i]]
    assert len(guards) == 2 and max(guards) < start
    schema_guards = [i for i, s in enumerate(statements) if "cannot carry" in s]
    assert len(schema_guards) == 2 and max(schema_guards) < start
    assert "refused: commitments.metadata: " in statements[guards[0]]
    assert "refused: targets.goal_id: " in statements[guards[1]]
