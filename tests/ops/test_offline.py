"""Offline (``alembic upgrade --sql``) rendering: the SQL text, the guards, and that the
printed script does exactly what the online run does."""

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


def statements(script: str) -> list[str]:
    """The script's statements, first line of each (after any comment line), in order."""
    return [
        next(line for line in s.strip().splitlines() if not line.startswith("--"))
        for s in script.split(";\n\n")
        if s.strip()
    ]


def run_script(conn: Connection, fn: Callable[[Operations], Any]) -> None:
    """Execute what ``fn`` prints offline, in one transaction, as a DBA would."""
    execute(conn, "BEGIN;\n" + offline_sql(fn) + "COMMIT;")


def test_promote_prints_load_then_constrain() -> None:
    steps = statements(offline_sql(promote))
    assert steps == [
        "LOCK TABLE targets IN SHARE ROW EXCLUSIVE MODE",
        "DO $lossless$",  # guard: every goal_id has its client_goals row
        "CREATE TABLE target_goal_links AS SELECT gen_random_uuid() AS id, t.id AS target_id,"
        " t.goal_id AS goal_id, now()::timestamp AS created_at FROM targets AS t WITH NO DATA",
        "ALTER TABLE target_goal_links ALTER COLUMN id SET DEFAULT gen_random_uuid(),"
        " ALTER COLUMN id SET NOT NULL, ALTER COLUMN target_id SET NOT NULL,"
        " ALTER COLUMN goal_id SET NOT NULL, ALTER COLUMN created_at SET NOT NULL,"
        " ALTER COLUMN created_at SET DEFAULT now()",
        "CREATE TABLE IF NOT EXISTS lossless_stash (kind text NOT NULL, table_name text NOT NULL,"
        " column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb)",
        steps[5],
        steps[6],
        steps[7],
        "ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_pkey PRIMARY KEY (id)",
        "ALTER TABLE target_goal_links ADD CONSTRAINT uq_target_goal UNIQUE (target_id, goal_id)",
        "CREATE INDEX ix_target_goal_links_target_id ON target_goal_links (target_id)",
        "CREATE INDEX ix_target_goal_links_goal_id ON target_goal_links (goal_id)",
        "ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_target_id_fkey"
        " FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE",
        "ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_goal_id_fkey"
        " FOREIGN KEY (goal_id) REFERENCES client_goals(id) ON DELETE CASCADE",
        steps[14],
        "DELETE FROM lossless_stash AS s WHERE s.kind = 'column' AND s.table_name = 'targets'"
        " AND s.column_name = 'goal_id'",
        steps[16],
        "ALTER TABLE targets DROP COLUMN goal_id",
    ]
    assert steps[5].startswith("INSERT INTO target_goal_links SELECT r.* FROM lossless_stash")
    assert steps[6] == (
        "INSERT INTO target_goal_links (target_id, goal_id) SELECT t.id, t.goal_id FROM targets"
        " AS t WHERE t.goal_id IS NOT NULL AND NOT EXISTS (SELECT FROM lossless_stash AS s WHERE"
        " s.kind = 'link' AND s.table_name = 'targets' AND s.column_name = 'goal_id' AND"
        " s.row_key = jsonb_build_array(t.id) AND s.payload -> 'first' = to_jsonb(t.goal_id))"
    )
    assert steps[16].startswith("INSERT INTO lossless_stash (kind, table_name, column_name")


def test_collapse_prints_first_link_update_and_guard() -> None:
    script = offline_sql(collapse)
    assert (
        "UPDATE targets AS t SET goal_id = f.v FROM (SELECT DISTINCT ON (x.target_id)"
        " x.target_id AS g, x.goal_id AS v FROM target_goal_links AS x"
        " ORDER BY x.target_id, x.created_at, x.id, x.goal_id) AS f WHERE t.id = f.g"
    ) in script
    assert "RAISE EXCEPTION USING ERRCODE = 'check_violation'" in script
    assert "'refused: targets.goal_id: '" in script
    assert "ALTER TABLE targets ALTER COLUMN goal_id SET NOT NULL" in script
    assert (
        "ALTER TABLE targets ADD CONSTRAINT targets_goal_id_fkey"
        " FOREIGN KEY (goal_id) REFERENCES client_goals(id)"
    ) in script
    assert script.index("ADD COLUMN goal_id uuid") < script.index("DROP TABLE target_goal_links")


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
        "stash_column_in_jsonb (commitments.goal_id; offline: counts unknown)",
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
