"""Offline (``alembic upgrade --sql``) rendering: the guards, quoting, and that the printed
script does exactly what the online run does (the text itself: ``test_golden.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from alembic.operations import Operations
from sqlalchemy import Connection

from tests.ops.helpers import execute, offline_sql, run, state_of
from tests.ops.schemas import goals_and_targets, plans, uid
from toolkit.errors import OfflineModeError

PROMOTE = dict(
    junction="target_goal_links",
    owner_column="target_id",
    referent_column="goal_id",
    unique_name="uq_target_goal",
    referent_table="client_goals",
    referent_key="id",
    owner_key="id",
)
COLLAPSE = dict(
    table="targets",
    column="goal_id",
    owner_column="target_id",
    referent_column="goal_id",
    referent_table="client_goals",
    type_="uuid",
    nullable=False,
    owner_key="id",
)


def promote(op: Any) -> None:
    op.promote_fk_to_junction("targets", "goal_id", **PROMOTE)


def collapse(op: Any) -> None:
    op.collapse_junction_to_fk("target_goal_links", **COLLAPSE)


def stash(op: Any) -> None:
    op.stash_column_in_jsonb("commitments", "goal_id", primary_key="id")


def restore(op: Any) -> None:
    op.restore_column_from_jsonb(
        "commitments", "goal_id", type_="uuid", foreign_key=("client_goals", "id"), primary_key="id"
    )


MOVE = dict(jsonb_column="mig_metadata", key="legacy_plm_id", type_="uuid", parent_key="mig_id")


def to_child(op: Any) -> None:
    op.move_fk_to_child(
        "migrations_mig",
        "plm_id",
        child="iterations_ite",
        child_fk="mig_id",
        referent_table="plans_master_plm",
        **MOVE,
    )


def to_parent(op: Any) -> None:
    op.move_fk_to_parent(
        "iterations_ite",
        "plm_id",
        parent="migrations_mig",
        child_fk="mig_id",
        order_by=("created_at", "ite_id"),
        referent_table="plans_master_plm",
        **MOVE,
    )


def run_script(conn: Connection, fn: Callable[[Operations], Any]) -> None:
    """Execute what ``fn`` prints offline, in one transaction, as a DBA would."""
    execute(conn, "BEGIN;\n" + offline_sql(fn) + "COMMIT;")


@pytest.mark.parametrize("paramstyle", ["pyformat", "named"])
def test_text_is_verbatim_and_identifiers_quoted(paramstyle: str) -> None:
    def odd(op: Any) -> None:
        op.stash_column_in_jsonb(
            "Odd Table", "select", jsonb_column="meta:data", key="100% 'legacy'", primary_key="Id"
        )

    script = offline_sql(odd, paramstyle=paramstyle)
    assert '"Odd Table"' in script and '"select"' in script and '"meta:data"' in script
    assert "'100% ''legacy'''" in script
    assert "%%" not in script


@pytest.mark.parametrize(
    ("fn", "missing"),
    [
        (
            lambda op: op.promote_fk_to_junction(
                "targets", "goal_id", junction="j", owner_column="t", referent_column="g"
            ),
            "owner_key, referent_table, referent_key",
        ),
        (
            lambda op: op.collapse_junction_to_fk(
                "j",
                table="targets",
                column="goal_id",
                owner_column="t",
                referent_column="g",
                referent_table="client_goals",
            ),
            "owner_key",
        ),
        (lambda op: op.stash_column_in_jsonb("commitments", "goal_id"), "primary_key"),
        (
            lambda op: op.restore_column_from_jsonb("commitments", "goal_id", primary_key="id"),
            "type_=",
        ),
        (
            lambda op: op.move_fk_to_child("m", "p", child="i", child_fk="m_id"),
            "type_, parent_key, referent_table",
        ),
        (
            lambda op: op.move_fk_to_parent("i", "p", parent="m", child_fk="m_id", type_="uuid"),
            "parent_key, child_key",
        ),
    ],
)
def test_offline_needs_what_reflection_gives_online(
    fn: Callable[[Operations], Any], missing: str
) -> None:
    with pytest.raises(OfflineModeError, match=re.escape(missing)):
        offline_sql(fn)


def test_offline_results_have_no_counts() -> None:
    from toolkit.ops import recording

    with recording() as results:
        offline_sql(stash)
    [result] = results
    assert (result.offline, result.counts, result.summary()) == (
        True,
        {},
        "Stash commitments.goal_id in metadata['legacy_goal_id'] (offline: counts unknown)",
    )


def test_offline_junction_round_trip_restores_the_database(conn: Connection) -> None:
    goals_and_targets(conn)
    before = state_of(conn)
    run_script(conn, promote)
    assert "target_goal_links" in state_of(conn)[0]
    run_script(conn, collapse)
    assert state_of(conn) == before


def test_offline_stash_round_trip_restores_the_database(conn: Connection) -> None:
    goals_and_targets(conn)
    before = state_of(conn)
    run_script(conn, stash)
    run_script(conn, restore)
    assert state_of(conn) == before


def test_offline_move_round_trip_restores_the_database(conn: Connection) -> None:
    plans(conn)
    before = state_of(conn)
    run_script(conn, to_child)
    run_script(conn, to_parent)
    assert state_of(conn) == before


def test_offline_guard_refuses_inside_the_database(conn: Connection) -> None:
    import psycopg

    goals_and_targets(conn, targets=6)
    run_script(conn, promote)
    run(conn, "DELETE FROM target_goal_links WHERE target_id = :t", t=uid("target2"))
    before = state_of(conn)

    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        run_script(conn, collapse)

    execute(conn, "ROLLBACK")
    assert str(refused.value).startswith(
        f"refused: targets.goal_id: 1 row(s) have no link in target_goal_links and goal_id is"
        f" NOT NULL (e.g. {uid('target2')}); pass on_missing="
    )
    assert state_of(conn) == before
