"""Scenario iteration-decoupling at scale: the toolkit's revision vs the same job in SQL.

    python -m bench.bench_iteration_decoupling --rows 1000000 [--repeat 2] [--url URL]

One seeded Model B database is cloned (CREATE DATABASE ... TEMPLATE) for every run, so each
variant starts from identical files. Per run: upgrade to Model C, then downgrade back, timed
separately, once through the toolkit (Alembic + ``move_fk_to_child`` /
``move_fk_to_parent``) and once as hand-written SQL doing the same job: the same refusal
checks, the same stash (plan in ``mig_metadata.legacy_plm_id``, SQL-NULL metadata
remembered aside), the same loss count. Both must end in the same data (checked, in
Postgres); the ratio toolkit / SQL is what this benchmark reports.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from bench.harness import Timer, bench_server, parser, peak_rss_mb, print_table
from scenarios.iteration_decoupling import MODEL_B, MODEL_C, SCENARIO
from toolkit import migrate
from toolkit.postgres import connect, scratch_database
from toolkit.postgres.url import database_name, sqlalchemy_url

PROJECT = migrate.Project.for_scenario(SCENARIO)
TABLES = ("plans_master_plm", "migrations_mig", "iterations_ite")

# Refusals a careful hand-written script makes too: a migration to stash whose metadata is
# not an object, or already holds the key.
_UPGRADE_CHECK = """
SELECT count(*) FROM migrations_mig AS m
WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
  AND m.mig_metadata IS NOT NULL
  AND (jsonb_typeof(m.mig_metadata) <> 'object' OR m.mig_metadata ? 'legacy_plm_id')
"""

HANDWRITTEN_UPGRADE = (
    # Which stashed migrations had SQL-NULL metadata: {} + key must become NULL again.
    """
    CREATE TABLE bench_null_metadata AS
    SELECT m.mig_id FROM migrations_mig AS m
    WHERE m.mig_metadata IS NULL
      AND NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
    """,
    """
    UPDATE migrations_mig AS m
    SET mig_metadata = coalesce(m.mig_metadata, '{}'::jsonb)
                       || jsonb_build_object('legacy_plm_id', m.plm_id)
    WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
    """,
    "ALTER TABLE iterations_ite ADD COLUMN plm_id uuid",
    """
    UPDATE iterations_ite AS i SET plm_id = m.plm_id
    FROM migrations_mig AS m WHERE m.mig_id = i.mig_id
    """,
    "ALTER TABLE iterations_ite ALTER COLUMN plm_id SET NOT NULL",
    """
    ALTER TABLE iterations_ite ADD CONSTRAINT iterations_ite_plm_id_fkey
    FOREIGN KEY (plm_id) REFERENCES plans_master_plm (plm_id)
    """,
    "ALTER TABLE migrations_mig DROP CONSTRAINT migrations_mig_plm_id_fkey",
    "ALTER TABLE migrations_mig DROP COLUMN plm_id",
    sql.SQL("UPDATE alembic_version SET version_num = {}").format(sql.Literal(MODEL_C)),
)

# Migrations with neither an iteration nor a kept plan: NOT NULL cannot be restored.
_DOWNGRADE_CHECK = """
SELECT count(*) FROM migrations_mig AS m
WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
  AND m.mig_metadata -> 'legacy_plm_id' IS NULL
"""

_FIRST_ITERATION = """
SELECT DISTINCT ON (mig_id) mig_id, plm_id FROM iterations_ite
ORDER BY mig_id, created_at, ite_id
"""

_DOWNGRADE_LOST = f"""
SELECT count(*) FROM iterations_ite AS i JOIN ({_FIRST_ITERATION}) AS f ON f.mig_id = i.mig_id
WHERE i.plm_id <> f.plm_id
"""  # noqa: S608  (composed from this module's constants)

HANDWRITTEN_DOWNGRADE = (
    "ALTER TABLE migrations_mig ADD COLUMN plm_id uuid",
    f"""
    UPDATE migrations_mig AS m SET plm_id = f.plm_id
    FROM ({_FIRST_ITERATION}) AS f WHERE f.mig_id = m.mig_id
    """,  # noqa: S608
    """
    UPDATE migrations_mig AS m
    SET plm_id = coalesce(m.plm_id, (m.mig_metadata ->> 'legacy_plm_id')::uuid),
        mig_metadata = CASE
            WHEN m.mig_id IN (SELECT n.mig_id FROM bench_null_metadata AS n)
            THEN NULL ELSE m.mig_metadata - 'legacy_plm_id' END
    WHERE m.mig_metadata -> 'legacy_plm_id' IS NOT NULL
    """,
    "DROP TABLE bench_null_metadata",
    "ALTER TABLE migrations_mig ALTER COLUMN plm_id SET NOT NULL",
    """
    ALTER TABLE migrations_mig ADD CONSTRAINT migrations_mig_plm_id_fkey
    FOREIGN KEY (plm_id) REFERENCES plans_master_plm (plm_id)
    """,
    "ALTER TABLE iterations_ite DROP CONSTRAINT iterations_ite_plm_id_fkey",
    "ALTER TABLE iterations_ite DROP COLUMN plm_id",
    sql.SQL("UPDATE alembic_version SET version_num = {}").format(sql.Literal(MODEL_B)),
)


Statement = str | sql.Composed


def _run_sql(url: str, check: str, statements: Sequence[Statement], *, counted: str | None) -> int:
    """One transaction: refuse if ``check`` counts rows, count the loss, run the steps."""
    with connect(url, autocommit=False) as conn:
        refused = _count(conn, check)
        if refused:
            raise SystemExit(f"hand-written SQL refused: {refused} row(s)")
        lost = _count(conn, counted) if counted else 0
        for statement in statements:
            conn.execute(statement.encode() if isinstance(statement, str) else statement)
        conn.commit()
    return lost


def _count(conn: psycopg.Connection[tuple[object, ...]], query: str) -> int:
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return int(str(row[0]))


def sql_upgrade(url: str) -> int:
    """The upgrade, hand-written."""
    return _run_sql(url, _UPGRADE_CHECK, HANDWRITTEN_UPGRADE, counted=None)


def sql_downgrade(url: str) -> int:
    """The downgrade, hand-written; returns the iterations whose plan is lost."""
    return _run_sql(url, _DOWNGRADE_CHECK, HANDWRITTEN_DOWNGRADE, counted=_DOWNGRADE_LOST)


def toolkit_upgrade(url: str) -> int:
    """The upgrade through Alembic and the toolkit's operation."""
    return sum(r.lost for r in migrate.upgrade(PROJECT, url, MODEL_C))


def toolkit_downgrade(url: str) -> int:
    """The downgrade through Alembic and the toolkit's operation."""
    return sum(r.lost for r in migrate.downgrade(PROJECT, url, MODEL_B))


def fingerprint(url: str) -> dict[str, tuple[object, ...]]:
    """Per scenario table: row count and an order-independent sum of row hashes."""
    result: dict[str, tuple[object, ...]] = {}
    with connect(url) as conn:
        for table in TABLES:
            query = sql.SQL(
                "SELECT count(*), coalesce(sum(hashtextextended(to_jsonb(t)::text, 0)"
                "::numeric), 0) FROM {} AS t"
            ).format(sql.Identifier(table))
            row = conn.execute(query).fetchone()
            assert row is not None
            result[table] = tuple(row)
    return result


def _checkpoint(url: str) -> None:
    # Flush the clone's dirty pages so a run does not pay for the previous one's writes.
    with connect(url) as conn, contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def seed_template(url: str, rows: int, timer: Timer) -> None:
    migrate.upgrade(PROJECT, url, MODEL_B)
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with timer.measure("seed"), engine.begin() as conn:
            SCENARIO.seed(conn, rows, 0)
    finally:
        engine.dispose()
    with connect(url) as conn:
        conn.execute("VACUUM (ANALYZE)")


def _timed_run(
    server_url: str, template: str, name: str, timer: Timer, start: object
) -> dict[str, object]:
    """Clone the template, time the variant's upgrade then downgrade."""
    up, down = VARIANTS[name]
    clone = scratch_database(
        server_url, prefix="lossless_bench_run", template=database_name(template)
    )
    with clone as url:
        _checkpoint(url)
        with timer.measure(f"{name} upgrade"):
            up(url)
        after_up = fingerprint(url)
        _checkpoint(url)
        with timer.measure(f"{name} downgrade"):
            lost = down(url)
        return {"after_up": after_up, "lost": lost, "round_trip_ok": fingerprint(url) == start}


Step = Callable[[str], int]
VARIANTS: dict[str, tuple[Step, Step]] = {
    "toolkit": (toolkit_upgrade, toolkit_downgrade),
    "SQL": (sql_upgrade, sql_downgrade),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if toolkit and SQL did not produce the same data."""
    args = parser(__doc__ or "", default_rows=100_000).parse_args(argv)
    timer = Timer()
    results: dict[str, dict[str, object]] = {}
    exact: list[bool] = []
    with (
        bench_server(args.url) as server,
        scratch_database(server.url, prefix="lossless_bench_itd") as template,
    ):
        seed_template(template, args.rows, timer)
        start = fingerprint(template)
        for run in range(args.repeat):
            order = list(VARIANTS) if run % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                results[name] = _timed_run(server.url, template, name, timer, start)
                exact.append(bool(results[name]["round_trip_ok"]))
            exact.append(results["toolkit"]["after_up"] == results["SQL"]["after_up"])
    t = timer.results
    print(f"# {args.rows} iterations; seed {t['seed']:.1f} s; best of {args.repeat}")
    print_table(
        ["step", "toolkit s", "SQL s", "ratio"],
        [
            [
                step,
                t[f"toolkit {step}"],
                t[f"SQL {step}"],
                f"{t[f'toolkit {step}'] / t[f'SQL {step}']:.2f}x",
            ]
            for step in ("upgrade", "downgrade")
        ],
    )
    print(
        "# every run: same data after upgrade (toolkit vs SQL) and exact round trips: "
        f"{all(exact)}; lost: toolkit {results['toolkit']['lost']}, SQL {results['SQL']['lost']};"
        f" client peak RSS {peak_rss_mb():.0f} MiB"
    )
    return 0 if all(exact) else 1


if __name__ == "__main__":
    sys.exit(main())
