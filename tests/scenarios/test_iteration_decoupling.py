"""Scenario iteration-decoupling (ADR 024) on real PostgreSQL.

Integration tests follow describe -> forward -> assert data -> backward -> assert identical.
The "before" rows are copied into a side schema (``expected``) so that what the upgrade
and downgrade did is checked against the original data by plain SQL, independently of the
toolkit's own snapshot code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from scenarios.iteration_decoupling import (
    ITERATIONS_OFF_THE_FIRST_PLAN,
    KEPT_PLANS_SUPERSEDED,
    MODEL_B,
    MODEL_C,
    SCENARIO,
    plans_of_migration_query,
    seed_counts,
    write_new_shape,
)
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import DataRefusedError
from toolkit.migrate import Project
from toolkit.ops.results import OpResult
from toolkit.postgres import Server, connect
from toolkit.roundtrip import run_scenario_roundtrip

PROJECT = Project.for_scenario(SCENARIO)
ROWS = 90  # >= 45: every (iteration count, metadata kind) pair of the seed occurs
SEED = 7
TABLES = ("plans_master_plm", "migrations_mig", "iterations_ite")

State = dict[str, Any]


# --- helpers -----------------------------------------------------------------------------


def _scalar(conn: Connection, sql: str, **params: object) -> object:
    return conn.execute(sa.text(sql), params).scalar_one()


def _public_tables(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ).scalars()
    )


def _state(conn: Connection) -> State:
    """Schema and data of every public table, computed in Postgres (test-side oracle)."""
    state: State = {"tables": _public_tables(conn)}
    state["columns"] = set(
        conn.execute(
            sa.text(
                """
                SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                       a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
                FROM pg_attribute AS a
                JOIN pg_class AS c ON c.oid = a.attrelid
                JOIN pg_namespace AS n ON n.oid = c.relnamespace
                LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
                  AND NOT a.attisdropped AND c.relname <> 'alembic_version'
                """
            )
        ).all()
    )
    state["constraints"] = _constraints(conn)
    state["indexes"] = set(
        conn.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        ).all()
    )
    for name in state["tables"]:
        t = sa.table(name).alias("t")
        row_hash = sa.func.hashtextextended(
            sa.cast(sa.func.to_jsonb(sa.literal_column("t")), sa.Text), 0
        )
        query = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(sa.cast(row_hash, sa.Numeric)), 0)
        ).select_from(t)
        state[f"data:{name}"] = tuple(conn.execute(query).one())
    return state


def _constraints(conn: Connection) -> set[tuple[str, str, str]]:
    return set(
        conn.execute(
            sa.text(
                """
                SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
                FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
                WHERE n.nspname = 'public' AND c.contype IN ('p', 'f', 'u', 'c')
                  AND c.conrelid::regclass::text <> 'alembic_version'
                """
            )
        ).all()
    )


def _keep_expected(conn: Connection) -> None:
    """Copy the three tables as they are now into schema ``expected``."""
    conn.execute(sa.text("DROP SCHEMA IF EXISTS expected CASCADE"))
    conn.execute(sa.text("CREATE SCHEMA expected"))
    conn.execute(sa.text("CREATE TABLE expected.plans_master_plm AS TABLE plans_master_plm"))
    conn.execute(sa.text("CREATE TABLE expected.migrations_mig AS TABLE migrations_mig"))
    conn.execute(sa.text("CREATE TABLE expected.iterations_ite AS TABLE iterations_ite"))


def _up(url: str) -> list[OpResult]:
    return migrate.upgrade(PROJECT, url, MODEL_C)


def _down(url: str) -> list[OpResult]:
    return migrate.downgrade(PROJECT, url, MODEL_B)


def _count(results: list[OpResult], key: str) -> int:
    return sum(r.counts.get(key, 0) for r in results)


def _violations(conn: Connection) -> dict[str, list[object]]:
    found = {
        inv.name: list(conn.execute(sa.text(inv.sql)).scalars()) for inv in SCENARIO.invariants
    }
    return {name: rows for name, rows in found.items() if rows}


# Migrations without iterations, with the kind of their metadata.
_IDLE_MIGRATIONS = (
    sa.text(
        """
SELECT m.mig_id, m.mig_name,
       CASE WHEN m.mig_metadata IS NULL THEN 'NULL'
            WHEN m.mig_metadata = '{}' THEN 'empty'
            WHEN m.mig_metadata ? 'notes' THEN 'nested-unicode'
            WHEN m.mig_metadata ? 'legacy' THEN 'unrelated-keys'
            ELSE 'flat' END AS kind
FROM migrations_mig AS m
WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
"""
    )
    .columns(sa.column("mig_id"), sa.column("mig_name"), sa.column("kind"))
    .subquery("idle")
)


def _mig_id(conn: Connection, name: str) -> object:
    return _scalar(conn, "SELECT mig_id FROM migrations_mig WHERE mig_name = :n", n=name)


@pytest.fixture
def model_b(lossless_database: str, conn: Connection) -> Iterator[str]:
    """A database at Model B, seeded with ROWS iterations."""
    migrate.upgrade(PROJECT, lossless_database, MODEL_B)
    SCENARIO.seed(conn, ROWS, SEED)
    yield lossless_database


# --- Model B: the contract --------------------------------------------------------------


def test_scenario_is_registered() -> None:
    found = get_scenario("iteration-decoupling")
    assert (found.before, found.after) == (MODEL_B, MODEL_C)
    assert found.script_location == SCENARIO.script_location
    assert [r.revision for r in migrate.history(PROJECT)] == [MODEL_B, MODEL_C]


def test_model_b_schema_is_the_contract(lossless_database: str, conn: Connection) -> None:
    migrate.upgrade(PROJECT, lossless_database, MODEL_B)
    state = _state(conn)
    uuid_default = "gen_random_uuid()"
    tz = "timestamp with time zone"
    assert state["columns"] == {
        ("plans_master_plm", "plm_id", "uuid", True, uuid_default),
        ("plans_master_plm", "plm_name", "text", True, None),
        ("plans_master_plm", "created_at", tz, True, "now()"),
        ("migrations_mig", "mig_id", "uuid", True, uuid_default),
        ("migrations_mig", "mig_name", "text", True, None),
        ("migrations_mig", "plm_id", "uuid", True, None),
        ("migrations_mig", "mig_metadata", "jsonb", False, None),
        ("migrations_mig", "created_at", tz, True, "now()"),
        ("iterations_ite", "ite_id", "uuid", True, uuid_default),
        ("iterations_ite", "mig_id", "uuid", True, None),
        ("iterations_ite", "ite_name", "text", True, None),
        ("iterations_ite", "ite_type", "text", True, None),
        ("iterations_ite", "created_at", tz, True, "now()"),
    }
    assert state["constraints"] == {
        ("plans_master_plm", "plans_master_plm_pkey", "PRIMARY KEY (plm_id)"),
        ("migrations_mig", "migrations_mig_pkey", "PRIMARY KEY (mig_id)"),
        (
            "migrations_mig",
            "migrations_mig_plm_id_fkey",
            "FOREIGN KEY (plm_id) REFERENCES plans_master_plm(plm_id)",
        ),
        ("iterations_ite", "iterations_ite_pkey", "PRIMARY KEY (ite_id)"),
        (
            "iterations_ite",
            "iterations_ite_mig_id_fkey",
            "FOREIGN KEY (mig_id) REFERENCES migrations_mig(mig_id)",
        ),
    }
    assert (
        "ix_iterations_ite_mig_id",
        "CREATE INDEX ix_iterations_ite_mig_id ON public.iterations_ite USING btree (mig_id)",
    ) in state["indexes"]


def test_model_b_accepts_inserts_relying_on_defaults(
    lossless_database: str, conn: Connection
) -> None:
    migrate.upgrade(PROJECT, lossless_database, MODEL_B)
    conn.execute(sa.text("INSERT INTO plans_master_plm (plm_name) VALUES ('P')"))
    conn.execute(
        sa.text(
            "INSERT INTO migrations_mig (mig_name, plm_id) SELECT 'M', plm_id FROM plans_master_plm"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO iterations_ite (mig_id, ite_name, ite_type)"
            " SELECT mig_id, 'DR 1', 'DR' FROM migrations_mig"
        )
    )
    with pytest.raises(sa.exc.IntegrityError, match="not-null"):
        conn.execute(sa.text("INSERT INTO migrations_mig (mig_name) VALUES ('no plan')"))
    assert _scalar(conn, "SELECT count(*) FROM iterations_ite WHERE created_at <= now()") == 1


# --- seed ---------------------------------------------------------------------------------


def test_seed_covers_the_edge_cases(model_b: str, conn: Connection) -> None:
    counts = seed_counts(ROWS)
    for table in TABLES:
        count_rows = sa.select(sa.func.count()).select_from(sa.table(table))
        assert conn.execute(count_rows).scalar_one() == counts[table]
    per_migration = dict(
        conn.execute(
            sa.text(
                """
                SELECT n, count(*) FROM (
                    SELECT m.mig_id, count(i.ite_id) AS n
                    FROM migrations_mig AS m LEFT JOIN iterations_ite AS i USING (mig_id)
                    GROUP BY m.mig_id) AS s
                GROUP BY n
                """
            )
        ).all()
    )
    assert per_migration == {0: 20, 1: 20, 2: 10, 5: 10}
    # Every metadata kind among migrations WITHOUT iterations (the ones that get stashed).
    kinds = set(conn.execute(sa.select(_IDLE_MIGRATIONS.c.kind)).scalars())
    assert kinds == {"NULL", "empty", "flat", "nested-unicode", "unrelated-keys"}
    assert (
        _scalar(
            conn,
            """SELECT count(*) FROM migrations_mig
            WHERE mig_metadata::text LIKE '%"ratio": 1.50%' AND mig_metadata::text LIKE '%null%'""",
        )
        == seed_counts(ROWS)["migrations_mig"] // 5
    )
    assert set(conn.execute(sa.text("SELECT DISTINCT ite_type FROM iterations_ite")).scalars()) == {
        "DR",
        "CUTOVER",
    }
    # Migrations whose FIRST iteration is a created_at tie: the 5-iteration ones.
    tied_firsts = _scalar(
        conn,
        """
        SELECT count(*) FROM (
            SELECT mig_id FROM (
                SELECT mig_id, rank() OVER (PARTITION BY mig_id ORDER BY created_at) AS r
                FROM iterations_ite) AS ranked
            WHERE r = 1 GROUP BY mig_id HAVING count(*) > 1) AS tied
        """,
    )
    assert tied_firsts == 10


def test_seed_is_deterministic(model_b: str, conn: Connection) -> None:
    first = _state(conn)
    conn.execute(sa.text("TRUNCATE iterations_ite, migrations_mig, plans_master_plm"))
    SCENARIO.seed(conn, ROWS, SEED)
    assert _state(conn) == first
    conn.execute(sa.text("TRUNCATE iterations_ite, migrations_mig, plans_master_plm"))
    SCENARIO.seed(conn, ROWS, SEED + 1)
    assert _state(conn)["data:iterations_ite"] != first["data:iterations_ite"]


# --- upgrade, downgrade --------------------------------------------------------------------


def test_upgrade_moves_the_plan_to_iterations_and_downgrade_restores_it(
    model_b: str, conn: Connection
) -> None:
    before = _state(conn)
    _keep_expected(conn)
    zero_iteration_migrations = _scalar(
        conn,
        "SELECT count(*) FROM migrations_mig AS m"
        " WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)",
    )

    up = _up(model_b)

    assert [r.operation for r in up] == ["move_fk_to_child"]
    assert _count(up, "moved") == ROWS
    assert _count(up, "stashed") == zero_iteration_migrations
    assert _violations(conn) == {}
    # Toolkit-independent: each iteration carries exactly the plan its migration had.
    assert (
        _scalar(
            conn,
            """
            SELECT count(*) FROM iterations_ite AS i
            JOIN expected.migrations_mig AS m ON m.mig_id = i.mig_id
            WHERE i.plm_id = m.plm_id
            """,
        )
        == ROWS
    )
    # Nothing else about an iteration changed.
    assert (
        _scalar(
            conn,
            """
            SELECT count(*) FROM iterations_ite AS i
            JOIN expected.iterations_ite AS e ON to_jsonb(e) = to_jsonb(i) - 'plm_id'
            """,
        )
        == ROWS
    )

    down = _down(model_b)

    assert [r.operation for r in down] == ["move_fk_to_parent"]
    assert _count(down, "lost") == 0
    assert _count(down, "restored") == zero_iteration_migrations
    assert _state(conn) == before
    assert migrate.current(PROJECT, model_b) == (MODEL_B,)


def test_migration_without_iterations_keeps_plan_in_metadata(
    model_b: str, conn: Connection
) -> None:
    _keep_expected(conn)
    _up(model_b)
    # The kept plan is the migration's plan; the metadata is otherwise what it was.
    mismatches = _scalar(
        conn,
        """
        SELECT count(*) FROM migrations_mig AS m
        JOIN expected.migrations_mig AS e ON e.mig_id = m.mig_id
        WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
          AND (m.mig_metadata ->> 'legacy_plm_id' IS DISTINCT FROM e.plm_id::text
               OR m.mig_metadata - 'legacy_plm_id' <> coalesce(e.mig_metadata, '{}'))
        """,
    )
    assert mismatches == 0
    stashed = _scalar(
        conn, "SELECT count(*) FROM migrations_mig WHERE mig_metadata ? 'legacy_plm_id'"
    )
    assert stashed == seed_counts(ROWS)["migrations_mig"] - _scalar(
        conn, "SELECT count(DISTINCT mig_id) FROM iterations_ite"
    )
    # Migrations with iterations: metadata untouched, to the byte.
    changed = _scalar(
        conn,
        """
        SELECT count(*) FROM migrations_mig AS m
        JOIN expected.migrations_mig AS e ON e.mig_id = m.mig_id
        WHERE EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
          AND m.mig_metadata::text IS DISTINCT FROM e.mig_metadata::text
        """,
    )
    assert changed == 0


def _idle_migration(conn: Connection, kind: str) -> object:
    """The first seeded migration without iterations whose metadata is of ``kind``."""
    query = (
        sa.select(_IDLE_MIGRATIONS.c.mig_id)
        .where(_IDLE_MIGRATIONS.c.kind == kind)
        .order_by(_IDLE_MIGRATIONS.c.mig_name)
        .limit(1)
    )
    return conn.execute(query).scalar_one()


def _metadata_text(conn: Connection, mig_id: object) -> object:
    return _scalar(
        conn,
        "SELECT coalesce(mig_metadata::text, 'SQL NULL') FROM migrations_mig WHERE mig_id = :m",
        m=mig_id,
    )


def test_metadata_null_comes_back_null(model_b: str, conn: Connection) -> None:
    mig_id = _idle_migration(conn, "NULL")
    plan = _scalar(conn, "SELECT plm_id::text FROM migrations_mig WHERE mig_id = :m", m=mig_id)
    _up(model_b)
    assert _metadata_text(conn, mig_id) == f'{{"legacy_plm_id": "{plan}"}}'
    _down(model_b)
    assert _metadata_text(conn, mig_id) == "SQL NULL"
    assert (
        _scalar(conn, "SELECT plm_id::text FROM migrations_mig WHERE mig_id = :m", m=mig_id) == plan
    )


def test_empty_metadata_comes_back_empty(model_b: str, conn: Connection) -> None:
    mig_id = _idle_migration(conn, "empty")
    plan = _scalar(conn, "SELECT plm_id::text FROM migrations_mig WHERE mig_id = :m", m=mig_id)
    _up(model_b)
    assert _metadata_text(conn, mig_id) == f'{{"legacy_plm_id": "{plan}"}}'
    _down(model_b)
    assert _metadata_text(conn, mig_id) == "{}"


def test_nested_unicode_metadata_comes_back_exactly(model_b: str, conn: Connection) -> None:
    mig_id = _idle_migration(conn, "nested-unicode")
    original = _metadata_text(conn, mig_id)
    assert "移行リハーサル" in str(original) and "🚀" in str(original)
    _up(model_b)
    assert (
        _scalar(
            conn,
            "SELECT (mig_metadata - 'legacy_plm_id')::text FROM migrations_mig WHERE mig_id = :m",
            m=mig_id,
        )
        == original
    )
    _down(model_b)
    assert _metadata_text(conn, mig_id) == original


def _add_migration(conn: Connection, name: str, metadata: str | None) -> object:
    return _scalar(
        conn,
        "INSERT INTO migrations_mig (mig_name, mig_metadata) VALUES (:n, CAST(:md AS jsonb))"
        " RETURNING mig_id",
        n=name,
        md=metadata,
    )


def _add_iteration(
    conn: Connection, mig_id: object, ite_id: str, plan_rank: int, created_at: str
) -> None:
    conn.execute(
        sa.text(
            """
            INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, plm_id, created_at)
            SELECT CAST(:ite AS uuid), :mig, 'DR', 'DR', plm_id, CAST(:at AS timestamptz)
            FROM plans_master_plm ORDER BY plm_id OFFSET :rank LIMIT 1
            """
        ),
        {"ite": ite_id, "mig": mig_id, "rank": plan_rank, "at": created_at},
    )


def _plan(conn: Connection, rank: int) -> object:
    return _scalar(
        conn, "SELECT plm_id FROM plans_master_plm ORDER BY plm_id OFFSET :r LIMIT 1", r=rank
    )


def test_created_at_tie_broken_by_ite_id(model_b: str, conn: Connection) -> None:
    _up(model_b)
    mig_id = _add_migration(conn, "MIG-TIE", '{"wave": 1}')
    at = "2025-06-01 12:00:00+00"
    # Stored first but larger id: physical order must not decide.
    _add_iteration(conn, mig_id, "ffffffff-0000-0000-0000-000000000000", 1, at)
    _add_iteration(conn, mig_id, "00000000-0000-0000-0000-00000000000f", 2, at)
    # Later and with the smallest id of all: created_at comes before ite_id.
    _add_iteration(conn, mig_id, "00000000-0000-0000-0000-000000000000", 0, "2025-06-02")

    down = _down(model_b)

    plan = _scalar(conn, "SELECT plm_id FROM migrations_mig WHERE mig_id = :m", m=mig_id)
    assert plan == _plan(conn, 2)
    assert _count(down, "lost") == 2
    assert _metadata_text(conn, mig_id) == '{"wave": 1}'


def test_iterations_on_different_plans_lose_declared(model_b: str, conn: Connection) -> None:
    _up(model_b)
    write_new_shape(conn, SEED)
    assert _violations(conn).keys() == {
        "each iteration carries its migration's plan",
        "no kept plan on a migration with iterations",
    }
    declared = _scalar(conn, ITERATIONS_OFF_THE_FIRST_PLAN)
    superseded = _scalar(conn, KEPT_PLANS_SUPERSEDED)
    assert isinstance(declared, int) and declared > 2
    assert superseded == 2
    _keep_expected(conn)

    down = _down(model_b)

    assert _count(down, "lost") == declared + superseded
    # Each migration went back to its first iteration's plan (created_at, ite_id).
    wrong = _scalar(
        conn,
        """
        SELECT count(*) FROM migrations_mig AS m
        JOIN (SELECT DISTINCT ON (mig_id) mig_id, plm_id FROM expected.iterations_ite
              ORDER BY mig_id, created_at, ite_id) AS f ON f.mig_id = m.mig_id
        WHERE m.plm_id <> f.plm_id
        """,
    )
    assert wrong == 0
    tie_winner = _scalar(
        conn,
        """
        SELECT plm_id FROM expected.iterations_ite
        WHERE mig_id = (SELECT mig_id FROM migrations_mig WHERE mig_name = 'MIG-NEW-2')
        ORDER BY created_at, ite_id LIMIT 1
        """,
    )
    assert (
        _scalar(conn, "SELECT plm_id FROM migrations_mig WHERE mig_name = 'MIG-NEW-2'")
        == tie_winner
    )

    _up(model_b)

    # Exactly the declared iterations changed, and only in plm_id.
    changed = conn.execute(
        sa.text(
            """
            SELECT count(*) FILTER (WHERE to_jsonb(i) <> to_jsonb(e)),
                   count(*) FILTER (WHERE to_jsonb(i) - 'plm_id' <> to_jsonb(e) - 'plm_id'),
                   count(*)
            FROM iterations_ite AS i FULL JOIN expected.iterations_ite AS e USING (ite_id)
            """
        )
    ).one()
    assert tuple(changed) == (declared, 0, ROWS + 5 + superseded)
    # ... and the migrations whose kept plan a later iteration superseded, only in metadata.
    changed = conn.execute(
        sa.text(
            """
            SELECT count(*) FILTER (WHERE to_jsonb(m) <> to_jsonb(e)),
                   count(*) FILTER (
                       WHERE to_jsonb(m) - 'mig_metadata' <> to_jsonb(e) - 'mig_metadata'
                          OR m.mig_metadata - 'legacy_plm_id'
                             IS DISTINCT FROM e.mig_metadata - 'legacy_plm_id'),
                   count(*)
            FROM migrations_mig AS m FULL JOIN expected.migrations_mig AS e USING (mig_id)
            """
        )
    ).one()
    assert tuple(changed) == (superseded, 0, seed_counts(ROWS)["migrations_mig"] + 2)
    assert _violations(conn) == {}


def test_kept_plan_yields_to_a_later_iteration(model_b: str, conn: Connection) -> None:
    mig_id = _idle_migration(conn, "NULL")
    _up(model_b)
    other_plan = _scalar(
        conn,
        """
        SELECT p.plm_id FROM plans_master_plm AS p, migrations_mig AS m
        WHERE m.mig_id = :m AND p.plm_id::text <> m.mig_metadata ->> 'legacy_plm_id'
        ORDER BY p.plm_id LIMIT 1
        """,
        m=mig_id,
    )
    conn.execute(
        sa.text(
            "INSERT INTO iterations_ite (mig_id, ite_name, ite_type, plm_id)"
            " VALUES (:m, 'Cutover', 'CUTOVER', :p)"
        ),
        {"m": mig_id, "p": other_plan},
    )

    down = _down(model_b)

    # The migration ran other_plan after all: that wins over the plan kept at upgrade time,
    # and the kept copy disappears (a Model B database has no legacy_plm_id keys). The kept
    # plan is gone for good, so it is reported as lost.
    assert (
        _scalar(conn, "SELECT plm_id FROM migrations_mig WHERE mig_id = :m", m=mig_id) == other_plan
    )
    assert _metadata_text(conn, mig_id) == "SQL NULL"
    assert _count(down, "lost") == 1
    assert (
        _scalar(conn, "SELECT count(*) FROM migrations_mig WHERE mig_metadata ? 'legacy_plm_id'")
        == 0
    )


def test_downgrade_refuses_migration_without_iteration_or_kept_plan(
    model_b: str, conn: Connection
) -> None:
    _up(model_b)
    fresh = _add_migration(conn, "MIG-NO-PLAN", '{"owner": "ops"}')
    # A migration that had one iteration, deleted after the upgrade: nothing kept its plan.
    orphaned = _scalar(
        conn,
        """
        SELECT mig_id FROM iterations_ite GROUP BY mig_id HAVING count(*) = 1
        ORDER BY mig_id LIMIT 1
        """,
    )
    conn.execute(sa.text("DELETE FROM iterations_ite WHERE mig_id = :m"), {"m": orphaned})
    before = _state(conn)

    with pytest.raises(DataRefusedError) as refused:
        _down(model_b)

    assert (refused.value.table, refused.value.column, refused.value.count) == (
        "migrations_mig",
        "plm_id",
        2,
    )
    assert {str(s) for s in refused.value.samples} >= {str(fresh), str(orphaned)}
    assert str(fresh) in str(refused.value)
    assert migrate.current(PROJECT, model_b) == (MODEL_C,)
    assert _state(conn) == before


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ('["not", "an", "object"]', "not an object"),
        ('{"legacy_plm_id": "set by hand"}', "already hold the key"),
    ],
)
def test_upgrade_refuses_metadata_that_cannot_keep_the_plan(
    metadata: str, reason: str, model_b: str, conn: Connection
) -> None:
    mig_id = _idle_migration(conn, "flat")
    conn.execute(
        sa.text("UPDATE migrations_mig SET mig_metadata = CAST(:md AS jsonb) WHERE mig_id = :m"),
        {"md": metadata, "m": mig_id},
    )
    before = _state(conn)

    with pytest.raises(DataRefusedError, match=reason) as refused:
        _up(model_b)

    assert (refused.value.table, refused.value.column, refused.value.count) == (
        "migrations_mig",
        "mig_metadata",
        1,
    )
    assert [str(s) for s in refused.value.samples] == [str(mig_id)]
    assert migrate.current(PROJECT, model_b) == (MODEL_B,)
    assert _state(conn) == before


# --- the round trip -----------------------------------------------------------------------


def test_round_trip_loses_nothing_undeclared(lossless_server: Server) -> None:
    rows = 198  # whole seed blocks of 9 iterations / 6 migrations, 2 of which have none
    report = run_scenario_roundtrip(
        get_scenario("iteration-decoupling"), lossless_server.url, rows=rows, seed=SEED
    )
    assert report.ok, report.render()
    steps = {step["name"]: step for step in report.to_json()["steps"]}
    assert list(steps) == ["prepare", "upgrade", "downgrade", "re-upgrade", "new shape"]
    counts = seed_counts(rows)
    idle = counts["migrations_mig"] // 3
    assert steps["upgrade"]["counts"]["moved"] == rows
    assert steps["upgrade"]["counts"]["stashed"] == idle
    assert [i["violations"] for i in steps["upgrade"]["invariants"]] == [0] * 5
    assert steps["downgrade"]["diff"]["ok"] and steps["re-upgrade"]["diff"]["ok"]
    assert steps["downgrade"]["counts"]["restored"] == idle
    losses = {loss["table"]: loss for loss in steps["new shape"]["losses"]}
    assert set(losses) == {"iterations_ite", "migrations_mig"}
    assert losses["migrations_mig"]["found"] == losses["migrations_mig"]["expected"] == 2
    found_iterations = losses["iterations_ite"]["found"]
    assert found_iterations == losses["iterations_ite"]["expected"] > 2
    assert steps["new shape"]["counts"]["lost"] == found_iterations + 2


# --- offline SQL ----------------------------------------------------------------------------


def test_offline_sql_creates_tables_before_foreign_keys() -> None:
    script = migrate.offline_sql(PROJECT, f"base:{MODEL_C}")
    tables = "plans_master_plm|migrations_mig|iterations_ite"
    creates = [m.start() for m in re.finditer(rf"CREATE TABLE ({tables}) ", script)]
    fks = [m.start() for m in re.finditer(r"ADD CONSTRAINT \w+_fkey FOREIGN KEY", script)]
    assert len(creates) == 3 and len(fks) == 3
    assert max(creates) < min(fks)
    assert re.search(r'ALTER TABLE "?iterations_ite"? ADD COLUMN "?plm_id"? UUID', script, re.I)
    assert "legacy_plm_id" in script
    assert re.search(r'ALTER TABLE "?migrations_mig"? DROP COLUMN "?plm_id"?', script)
    assert f"version_num='{MODEL_C}' WHERE" in script


def test_offline_downgrade_sql_names_the_order() -> None:
    script = migrate.offline_sql(PROJECT, f"{MODEL_C}:{MODEL_B}")
    assert re.search(r'ALTER TABLE "?migrations_mig"? ADD COLUMN "?plm_id"? UUID', script, re.I)
    assert re.search(r'ORDER BY[^;]*created_at"?,[^;]*ite_id', script)
    assert re.search(r'ALTER TABLE "?iterations_ite"? DROP COLUMN "?plm_id"?', script)
    assert not re.search(r"CREATE TABLE (plans_master_plm|migrations_mig|iterations_ite)", script)


def _run_script(url: str, script: str) -> None:
    with connect(url) as raw:
        raw.execute(script.encode())  # bytes: no client-side placeholder parsing


@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
def test_offline_sql_does_what_online_does(direction: str, model_b: str, conn: Connection) -> None:
    """Applying the ``--sql`` script gives the same database as running online."""
    span = f"{MODEL_B}:{MODEL_C}" if direction == "upgrade" else f"{MODEL_C}:{MODEL_B}"
    if direction == "downgrade":
        _up(model_b)
    script = migrate.offline_sql(PROJECT, span)
    start = _state(conn)
    (_up if direction == "upgrade" else _down)(model_b)
    online = _state(conn)
    (_down if direction == "upgrade" else _up)(model_b)
    assert _state(conn) == start
    _run_script(model_b, script)
    assert _state(conn) == online


def test_offline_downgrade_script_refuses_in_the_database(model_b: str, conn: Connection) -> None:
    _up(model_b)
    _add_migration(conn, "MIG-NO-PLAN", None)
    before = _state(conn)
    script = migrate.offline_sql(PROJECT, f"{MODEL_C}:{MODEL_B}")
    with pytest.raises(psycopg.Error, match="migrations_mig"):
        _run_script(model_b, script)
    assert _state(conn) == before
    assert migrate.current(PROJECT, model_b) == (MODEL_C,)


# --- the ADR's accepted cost: a migration's plans through its iterations --------------------


def test_plans_of_migration_query(model_b: str, conn: Connection) -> None:
    idle = _idle_migration(conn, "NULL")
    _up(model_b)
    write_new_shape(conn, SEED)
    query = plans_of_migration_query()

    new_1 = _mig_id(conn, "MIG-NEW-1")
    rows = conn.execute(query, {"mig_id": new_1}).all()
    assert [(r.plm_id, r.iterations) for r in rows] == [(_plan(conn, 0), 1), (_plan(conn, 1), 1)]
    assert rows[0].first_used_at < rows[1].first_used_at
    assert rows[0].plm_name == _scalar(
        conn, "SELECT plm_name FROM plans_master_plm WHERE plm_id = :p", p=rows[0].plm_id
    )

    five = _scalar(
        conn,
        "SELECT mig_id FROM iterations_ite GROUP BY mig_id HAVING count(*) = 5"
        " AND count(DISTINCT plm_id) = 1 ORDER BY mig_id LIMIT 1",
    )
    assert [r.iterations for r in conn.execute(query, {"mig_id": five})] == [5]

    kept = conn.execute(query, {"mig_id": idle}).all()
    assert [(str(r.plm_id), r.first_used_at, r.iterations) for r in kept] == [
        (
            _scalar(
                conn,
                "SELECT mig_metadata ->> 'legacy_plm_id' FROM migrations_mig WHERE mig_id = :m",
                m=idle,
            ),
            None,
            0,
        )
    ]
    assert conn.execute(plans_of_migration_query(include_kept=False), {"mig_id": idle}).all() == []


def test_plans_of_migration_query_matches_the_documented_sql(
    model_b: str, conn: Connection
) -> None:
    """The SQL in docs/scenarios/iteration-decoupling.md and the helper agree everywhere."""
    _up(model_b)
    write_new_shape(conn, SEED)
    documented = sa.text(
        """
        SELECT m.mig_id, p.plm_id, count(i.ite_id) AS iterations
        FROM migrations_mig AS m
        JOIN iterations_ite AS i ON i.mig_id = m.mig_id
        JOIN plans_master_plm AS p ON p.plm_id = i.plm_id
        GROUP BY m.mig_id, p.plm_id
        UNION ALL
        SELECT m.mig_id, p.plm_id, 0
        FROM migrations_mig AS m
        JOIN plans_master_plm AS p ON p.plm_id = (m.mig_metadata ->> 'legacy_plm_id')::uuid
        WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
        """
    )
    expected = sorted(conn.execute(documented).all())
    helper = plans_of_migration_query()
    got = sorted(
        (mig_id, row.plm_id, row.iterations)
        for mig_id in conn.execute(sa.text("SELECT mig_id FROM migrations_mig")).scalars()
        for row in conn.execute(helper, {"mig_id": mig_id})
    )
    assert got == expected
    assert len(got) == seed_counts(ROWS)["migrations_mig"] + 2 + _scalar(
        conn,
        "SELECT count(*) FROM (SELECT mig_id FROM iterations_ite GROUP BY mig_id"
        " HAVING count(DISTINCT plm_id) = 2) AS s",
    )
