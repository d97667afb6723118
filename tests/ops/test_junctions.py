"""promote_fk_to_junction / collapse_junction_to_fk on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from tests.ops.helpers import (
    columns,
    constraints,
    execute,
    indexes,
    rows,
    run,
    run_ops,
    state_of,
)
from tests.ops.schemas import goals_and_targets, uid
from toolkit.errors import DataRefusedError, UsageError
from toolkit.ops import CollapseJunctionToFkOp, PromoteFkToJunctionOp

PROMOTE: dict[str, Any] = dict(
    junction="target_goal_links",
    owner_column="target_id",
    referent_column="goal_id",
    unique_name="uq_target_goal",
)
COLLAPSE: dict[str, Any] = dict(
    table="targets",
    column="goal_id",
    owner_column="target_id",
    referent_column="goal_id",
    referent_table="client_goals",
    nullable=False,
    unique_name="uq_target_goal",
)


def promote(op: Any) -> None:
    op.promote_fk_to_junction("targets", "goal_id", **PROMOTE)


def collapse(**extra: Any) -> Callable[[Any], None]:
    def run_collapse(op: Any) -> None:
        op.collapse_junction_to_fk("target_goal_links", **{**COLLAPSE, **extra})

    return run_collapse


def test_promote_then_collapse_round_trip(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn)
    before = state_of(conn)
    op = PromoteFkToJunctionOp("targets", "goal_id", **PROMOTE)
    assert (
        op.describe() == "Promote targets.goal_id to junction target_goal_links(target_id, goal_id)"
    )

    [result] = run_ops(lossless_engine, promote)

    assert result.counts == {"moved": 40, "lost": 0}
    assert "dropped foreign key targets_goal_id_fkey" in result.notes
    links = rows(conn, "SELECT target_id::text, goal_id::text FROM target_goal_links ORDER BY 1")
    expected = sorted((uid(f"target{i}"), uid(f"goal{i % 5 + 1}")) for i in range(1, 41))
    assert links == expected
    assert columns(conn, "target_goal_links") == {
        ("id", "uuid", False, "gen_random_uuid()"),
        ("target_id", "uuid", False, None),
        ("goal_id", "uuid", False, None),
        ("created_at", "timestamp with time zone", False, "now()"),
    }
    defs = {c for c in constraints(conn, "target_goal_links") if not c[0].endswith("not_null")}
    assert defs == {
        ("target_goal_links_pkey", "PRIMARY KEY (id)"),
        ("uq_target_goal", "UNIQUE (target_id, goal_id)"),
        (
            "target_goal_links_target_id_fkey",
            "FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE",
        ),
        (
            "target_goal_links_goal_id_fkey",
            "FOREIGN KEY (goal_id) REFERENCES client_goals(id) ON DELETE CASCADE",
        ),
    }
    assert {i.split(" ON ")[0] for i in indexes(conn, "target_goal_links")} == {
        "CREATE UNIQUE INDEX target_goal_links_pkey",
        "CREATE UNIQUE INDEX uq_target_goal",
        "CREATE INDEX ix_target_goal_links_target_id",
        "CREATE INDEX ix_target_goal_links_goal_id",
    }
    assert "goal_id" not in {c[0] for c in columns(conn, "targets")}

    [back] = run_ops(lossless_engine, collapse())

    assert back.counts == {"collapsed": 40, "lost": 0}
    # where the data came from
    assert (result.loss_table, result.column) == ("targets", "goal_id")
    assert (back.loss_table, back.column) == ("target_goal_links", "goal_id")
    assert result.summary() == (
        "Promote targets.goal_id to junction target_goal_links(target_id, goal_id):"
        " moved 40, lost 0"
    )
    assert state_of(conn) == before


def test_reverse_restores_from_the_record(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn)
    before = state_of(conn)
    forward = PromoteFkToJunctionOp("targets", "goal_id", **PROMOTE)
    backward = forward.reverse()
    assert isinstance(backward, CollapseJunctionToFkOp)
    assert backward.reverse().describe() == forward.describe()

    run_ops(lossless_engine, lambda op: op.invoke(forward))
    [result] = run_ops(lossless_engine, lambda op: op.invoke(backward))

    # type, NOT NULL and the FK under its name all come from what promote recorded
    assert result.counts["collapsed"] == 40
    assert state_of(conn) == before


def test_first_link_wins_by_created_at_then_id(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=3)
    run_ops(lossless_engine, promote)
    t1, g1, g2, g3 = uid("target1"), uid("goal1"), uid("goal2"), uid("goal3")
    # target1 now has three links: two tie on created_at (id decides), one later
    run(conn, "DELETE FROM target_goal_links WHERE target_id = :t", t=t1)
    run(
        conn,
        "INSERT INTO target_goal_links (id, target_id, goal_id, created_at) VALUES"
        " ('00000000-0000-0000-0000-00000000000b', :t, :g1, '2024-01-01'),"
        " ('00000000-0000-0000-0000-00000000000a', :t, :g2, '2024-01-01'),"
        " ('00000000-0000-0000-0000-000000000000', :t, :g3, '2024-01-02')",
        t=t1,
        g1=g1,
        g2=g2,
        g3=g3,
    )

    [result] = run_ops(lossless_engine, collapse())

    assert result.counts == {"collapsed": 3, "lost": 2}
    assert result.lost == 2
    assert rows(conn, "SELECT goal_id::text FROM targets WHERE id = :t", t=t1) == [(g2,)]


def test_keep_extra_links_restores_them_verbatim(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=4)
    run_ops(lossless_engine, promote)
    t1, t2 = uid("target1"), uid("target2")
    # target1 gets two more links (three in all), target2 one more (two): three extra links
    run(
        conn,
        "INSERT INTO target_goal_links (target_id, goal_id, created_at) VALUES"
        " (:t1, :g4, '2030-01-01'), (:t1, :g5, '2030-01-02'), (:t2, :g4, '2030-01-01')",
        t1=t1,
        t2=t2,
        g4=uid("goal4"),
        g5=uid("goal5"),
    )
    junction = rows(conn, "SELECT to_jsonb(j)::text FROM target_goal_links j ORDER BY 1")
    several = {r for r in junction if t1 in r[0] or t2 in r[0]}
    assert len(several) == 5

    [down] = run_ops(lossless_engine, collapse(keep_extra_links=True))
    # stashed counts the links beyond the first per target, as lost would without the option
    assert down.counts == {"stashed": 3, "collapsed": 4, "lost": 0}
    assert "3 extra link(s) kept in the stash" in down.notes
    [up] = run_ops(lossless_engine, promote)

    # every link comes back exactly, the single links of the other targets too (their id
    # and created_at were recorded with the junction)
    assert up.counts == {"moved": 0, "restored": 7, "lost": 0}
    after = set(rows(conn, "SELECT to_jsonb(j)::text FROM target_goal_links j ORDER BY 1"))
    assert after == set(junction)
    # the stash is empty again except the column record promote keeps for the way back
    assert rows(conn, "SELECT kind, count(*) FROM lossless_stash GROUP BY 1") == [("column", 1)]


def test_keep_extra_links_counts_them_like_the_loss_it_avoids(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=6)
    run_ops(lossless_engine, promote)
    run(
        conn,
        "INSERT INTO target_goal_links (target_id, goal_id)"
        " SELECT t.id, g.id FROM targets t CROSS JOIN client_goals g"
        " WHERE t.title IN ('target 1', 'target 2') ON CONFLICT DO NOTHING",
    )
    [(links,)] = rows(conn, "SELECT count(*) FROM target_goal_links")
    assert links == 4 + 2 * 5  # four targets with one goal, two with all five
    stash_run = run_ops(lossless_engine, collapse(keep_extra_links=True))
    run_ops(lossless_engine, promote)

    [lose_run] = run_ops(lossless_engine, collapse())

    assert stash_run[0].counts["stashed"] == lose_run.counts["lost"] == links - 6


def test_kept_links_of_a_changed_owner_are_dropped(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=2)
    run_ops(lossless_engine, promote)
    t1, g3, g4 = uid("target1"), uid("goal3"), uid("goal4")
    run(conn, "INSERT INTO target_goal_links (target_id, goal_id) VALUES (:t, :g)", t=t1, g=g4)
    run_ops(lossless_engine, collapse(keep_extra_links=True))
    run(conn, "UPDATE targets SET goal_id = :g WHERE id = :t", g=g3, t=t1)

    [up] = run_ops(lossless_engine, promote)

    # target1's two kept links go (its goal changed), target2's recorded link comes back
    assert up.counts == {"moved": 1, "restored": 1, "dropped": 2, "lost": 0}
    kept = rows(conn, "SELECT goal_id::text FROM target_goal_links WHERE target_id = :t", t=t1)
    assert kept == [(g3,)]


def test_collapse_refuses_owner_without_link(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=10)
    run_ops(lossless_engine, promote)
    t3, t7 = uid("target3"), uid("target7")
    run(conn, "DELETE FROM target_goal_links WHERE target_id IN (:a, :b)", a=t3, b=t7)
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, collapse())

    error = refused.value
    assert (error.table, error.column, error.count) == ("targets", "goal_id", 2)
    assert set(error.samples) == {t3, t7}
    assert "on_missing" in str(error)
    assert state_of(conn) == before


def test_collapse_keep_null_policy(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=5)
    run_ops(lossless_engine, promote)
    t2 = uid("target2")
    run(conn, "DELETE FROM target_goal_links WHERE target_id = :t", t=t2)

    [result] = run_ops(lossless_engine, collapse(on_missing="keep_null"))

    assert result.counts == {"collapsed": 4, "lost": 0}
    assert any("left nullable" in n for n in result.notes)
    assert ("goal_id", "uuid", True, None) in columns(conn, "targets")
    assert rows(conn, "SELECT id::text FROM targets WHERE goal_id IS NULL") == [(t2,)]


def test_collapse_fill_policy(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=5)
    run_ops(lossless_engine, promote)
    t2, g5 = uid("target2"), uid("goal5")
    run(conn, "DELETE FROM target_goal_links WHERE target_id = :t", t=t2)

    [result] = run_ops(lossless_engine, collapse(on_missing="fill", fill_value=g5))

    assert result.counts == {"collapsed": 4, "filled": 1, "lost": 0}
    assert ("goal_id", "uuid", False, None) in columns(conn, "targets")
    assert rows(conn, "SELECT goal_id::text FROM targets WHERE id = :t", t=t2) == [(g5,)]


def test_collapse_refuses_fill_value_without_referent(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=5)
    run_ops(lossless_engine, promote)
    run(conn, "DELETE FROM target_goal_links WHERE target_id = :t", t=uid("target2"))
    before = state_of(conn)
    missing = uid("no such goal")

    with pytest.raises(DataRefusedError) as refused:
        run_ops(lossless_engine, collapse(on_missing="fill", fill_value=missing))

    assert refused.value.samples == (missing,)
    assert state_of(conn) == before


def test_nullable_column_keeps_its_nulls(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=9)
    before = state_of(conn)

    [up] = run_ops(
        lossless_engine,
        lambda op: op.promote_fk_to_junction(
            "commitments",
            "goal_id",
            junction="commitment_goal_links",
            owner_column="commitment_id",
            referent_column="goal_id",
        ),
    )
    assert up.counts == {"moved": 6, "lost": 0}  # rows 3, 6 and 9 had no goal
    assert constraints(conn, "commitment_goal_links") >= {
        ("uq_commitment_goal_links_commitment_id_goal_id", "UNIQUE (commitment_id, goal_id)")
    }
    [down] = run_ops(
        lossless_engine,
        lambda op: op.collapse_junction_to_fk(
            "commitment_goal_links",
            table="commitments",
            column="goal_id",
            owner_column="commitment_id",
            referent_column="goal_id",
            referent_table="client_goals",
        ),
    )
    assert down.counts == {"collapsed": 6, "lost": 0}
    assert state_of(conn) == before


def test_promote_refuses_values_without_referent(conn: Connection, lossless_engine: Engine) -> None:
    goals_and_targets(conn, targets=6)
    dangling = uid("deleted goal")
    execute(conn, "ALTER TABLE targets DROP CONSTRAINT targets_goal_id_fkey")
    run(conn, "UPDATE targets SET goal_id = :g WHERE id = :t", g=dangling, t=uid("target4"))
    before = state_of(conn)

    with pytest.raises(DataRefusedError) as refused:
        run_ops(
            lossless_engine,
            lambda op: op.promote_fk_to_junction(
                "targets", "goal_id", referent_table="client_goals", referent_key="id", **PROMOTE
            ),
        )

    error = refused.value
    assert (error.table, error.column, error.count) == ("targets", "goal_id", 1)
    assert error.samples == (uid("target4"),)
    assert state_of(conn) == before


def test_names_postgres_would_truncate_are_refused_first(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=3)
    before = state_of(conn)

    with pytest.raises(UsageError, match="longer than 63 bytes"):
        run_ops(
            lossless_engine,
            lambda op: op.promote_fk_to_junction(
                "targets", "goal_id", **{**PROMOTE, "unique_name": "u" * 64}
            ),
        )

    assert state_of(conn) == before


def test_promote_into_an_existing_table_is_refused(
    conn: Connection, lossless_engine: Engine
) -> None:
    goals_and_targets(conn, targets=3)
    execute(conn, "CREATE TABLE target_goal_links (id int)")
    before = state_of(conn)
    with pytest.raises(UsageError, match="already exists"):
        run_ops(lossless_engine, promote)
    assert state_of(conn) == before
