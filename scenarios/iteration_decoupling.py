"""Scenario ``iteration-decoupling`` (ADR 024, "Model C"): the plan FK moves to iterations.

Before (revision ``ad0240000b0b``, "Model B"): a migration runs exactly one master plan,
``migrations_mig.plm_id`` NOT NULL. After (revision ``ad024c0de0c0``): every iteration
carries its plan, ``iterations_ite.plm_id`` NOT NULL, so a migration may run a dress
rehearsal on one plan and its cutover on another; a migration without iterations keeps its
plan in ``mig_metadata.legacy_plm_id``.

Also home of ``plans_of_migration_query()``, the query the ADR accepted as its cost: a
migration's plans are now found through its iterations.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import JSONB, UUID

from toolkit.errors import UsageError
from toolkit.scenario import DeclaredLoss, Invariant, Scenario

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "revisions" / "iteration_decoupling"
MODEL_B = "ad0240000b0b"
MODEL_C = "ad024c0de0c0"
KEPT_PLAN_KEY = "legacy_plm_id"

#: Iterations per seed block; a block spans ``MIGRATIONS_PER_BLOCK`` migrations holding
#: 1, 2, 0, 5, 1 and 0 iterations. With the metadata cycling over 5 kinds (coprime with 6),
#: every (iteration count, metadata kind) pair occurs once ``rows`` reaches 45.
ITERATIONS_PER_BLOCK = 9
MIGRATIONS_PER_BLOCK = 6
#: Roughly one plan per 40 iterations, never fewer than 3.
ITERATIONS_PER_PLAN = 40
MIN_PLANS = 3

# --- seed ------------------------------------------------------------------------------
# Keys are md5('<seed>/<table>/<n>')::uuid, so a (rows, seed) pair always yields the same
# database and a test can recompute any key. Timestamps count from fixed bases.
# Rows are inserted in key order: primary-key, index and FK lookups then stay local, which
# halves the load time at 1M rows. Iterations of one migration go in DESCENDING ite_id, so
# that physical order disagrees with the (created_at, ite_id) tie-break of the downgrade.

_SEED_PLANS = sa.text(
    """
    INSERT INTO plans_master_plm (plm_id, plm_name, created_at)
    SELECT md5(CAST(:seed AS text) || '/plm/' || p)::uuid,
           'Plan maître ' || p,
           TIMESTAMPTZ '2024-01-01 00:00:00+00' + p * INTERVAL '1 minute'
    FROM generate_series(1, :plans) AS p
    """
)

# Metadata kinds, by m % 5: NULL, {}, flat keys, nested + unicode, unrelated keys holding a
# JSON null and a numeric with a trailing zero (jsonb keeps 1.50 as written).
# Migration created_at values tie in pairs (m / 2).
_SEED_MIGRATIONS = sa.text(
    """
    INSERT INTO migrations_mig (mig_id, mig_name, plm_id, mig_metadata, created_at)
    SELECT md5(CAST(:seed AS text) || '/mig/' || m)::uuid,
           'MIG-' || lpad(m::text, 7, '0'),
           md5(CAST(:seed AS text) || '/plm/' || (1 + (m * 7) % :plans))::uuid,
           CASE m % 5
             WHEN 0 THEN NULL
             WHEN 1 THEN '{}'::jsonb
             WHEN 2 THEN jsonb_build_object('owner', 'ops', 'wave', m % 11)
             WHEN 3 THEN jsonb_build_object(
                 'notes', jsonb_build_object(
                     'fr', 'répétition générale', 'ja', '移行リハーサル', 'emoji', '🚀'),
                 'tags', jsonb_build_array('dr', 'cutover'),
                 'wave', m % 11)
             ELSE jsonb_build_object(
                 'ticket', 'CHG-' || m, 'legacy', jsonb_build_object('plm', NULL),
                 'ratio', 1.50, 'clé', 'valeur')
           END,
           TIMESTAMPTZ '2024-02-01 00:00:00+00' + (m / 2) * INTERVAL '1 minute'
    FROM generate_series(1, :migrations) AS m
    ORDER BY 1
    """
)

# Iteration i sits at position p (1..9) of block b; the arrays give, per position, the
# migration (offset in the block), type, name and day. Migration offset 4 has five
# iterations whose first two tie on created_at (day 0): the tie is broken by ite_id.
_SEED_ITERATIONS = sa.text(
    """
    INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, created_at)
    SELECT md5(CAST(:seed AS text) || '/ite/' || s.i)::uuid,
           md5(CAST(:seed AS text) || '/mig/' || s.m)::uuid,
           (ARRAY['Cutover', 'DR 1', 'Cutover', 'DR 1', 'DR 2', 'DR 3', 'DR 4', 'Cutover',
                  'DR 1'])[s.p],
           (ARRAY['CUTOVER', 'DR', 'CUTOVER', 'DR', 'DR', 'DR', 'DR', 'CUTOVER', 'DR'])[s.p],
           TIMESTAMPTZ '2024-03-01 00:00:00+00' + s.m * INTERVAL '1 minute'
             + (ARRAY[0, 0, 7, 0, 0, 1, 2, 9, 0])[s.p] * INTERVAL '1 day'
    FROM (
        SELECT i, p,
               6 * ((i - 1) / 9) + (ARRAY[1, 2, 2, 4, 4, 4, 4, 4, 5])[p] AS m
        FROM generate_series(1, :rows) AS i,
             LATERAL (SELECT (i - 1) % 9 + 1 AS p) AS pos
    ) AS s
    ORDER BY 2, 1 DESC
    """
)


def seed_counts(rows: int) -> dict[str, int]:
    """How many rows ``seed_model_b`` writes per table for ``rows`` iterations."""
    if rows < 0:
        raise UsageError(f"rows must be >= 0, got {rows}")
    blocks = max(1, -(-rows // ITERATIONS_PER_BLOCK))
    return {
        "plans_master_plm": max(MIN_PLANS, -(-rows // ITERATIONS_PER_PLAN)),
        "migrations_mig": MIGRATIONS_PER_BLOCK * blocks,
        "iterations_ite": rows,
    }


def seed_model_b(conn: Connection, rows: int, seed: int) -> None:
    """Fill Model B with ``rows`` iterations (plans and migrations scaled), set-based.

    Covers migrations with zero, one and five iterations, DR and CUTOVER iterations,
    ``mig_metadata`` NULL / ``{}`` / flat / nested unicode / unrelated keys, and ties in
    ``created_at`` (among migrations, and between the first two iterations of a migration).
    """
    counts = seed_counts(rows)
    params = {
        "seed": seed,
        "rows": rows,
        "plans": counts["plans_master_plm"],
        "migrations": counts["migrations_mig"],
    }
    conn.execute(_SEED_PLANS, params)
    conn.execute(_SEED_MIGRATIONS, params)
    conn.execute(_SEED_ITERATIONS, params)
    # Freshly bulk-loaded tables have no statistics until autovacuum gets to them; the
    # upgrade's joins would otherwise be planned on guesses.
    conn.execute(sa.text("ANALYZE plans_master_plm, migrations_mig, iterations_ite"))


# --- new shape ---------------------------------------------------------------------------
# Data only Model C can hold: one migration, several plans. Downgrading keeps the first
# iteration's plan per migration (created_at, ite_id); the other iterations lose theirs.
# And a plan kept in mig_metadata that a later iteration supersedes: the downgrade takes the
# iteration's plan and drops the kept one.

_NEW_SHAPE_SWITCH_CUTOVERS = sa.text(
    """
    UPDATE iterations_ite AS i
    SET plm_id = (SELECT p.plm_id FROM plans_master_plm AS p
                  WHERE p.plm_id <> i.plm_id ORDER BY p.plm_id LIMIT 1)
    WHERE i.ite_type = 'CUTOVER'
      AND left(md5(CAST(:seed AS text) || '/switch/' || i.ite_id), 1) < '8'
      AND EXISTS (SELECT 1 FROM iterations_ite AS o
                  WHERE o.mig_id = i.mig_id AND o.ite_id <> i.ite_id)
    """
)

# Two new migrations: a DR on plan A then the cutover on plan B; and two DRs tied on
# created_at on plans A and B (the smaller ite_id wins, though it is stored last), then a
# cutover on B.
_NEW_SHAPE_MIGRATIONS = sa.text(
    """
    INSERT INTO migrations_mig (mig_id, mig_name, mig_metadata, created_at)
    VALUES (md5(CAST(:seed AS text) || '/new_mig/1')::uuid, 'MIG-NEW-1', NULL,
            TIMESTAMPTZ '2025-01-01 00:00:00+00'),
           (md5(CAST(:seed AS text) || '/new_mig/2')::uuid, 'MIG-NEW-2', '{}'::jsonb,
            TIMESTAMPTZ '2025-01-01 00:00:00+00')
    """
)

_NEW_SHAPE_ITERATIONS = sa.text(
    """
    WITH plan AS (
        SELECT plm_id, row_number() OVER (ORDER BY plm_id) AS n
        FROM plans_master_plm ORDER BY plm_id LIMIT 2
    )
    INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, plm_id, created_at)
    SELECT md5(CAST(:seed AS text) || '/new_ite/' || v.k)::uuid,
           md5(CAST(:seed AS text) || '/new_mig/' || v.mig)::uuid,
           v.name, v.kind, plan.plm_id,
           TIMESTAMPTZ '2025-01-02 00:00:00+00' + v.day * INTERVAL '1 day'
    FROM (VALUES (1, 1, 'DR 1', 'DR', 1, 0),
                 (2, 1, 'Cutover', 'CUTOVER', 2, 5),
                 (3, 2, 'DR 1', 'DR', 1, 0),
                 (4, 2, 'DR 2', 'DR', 2, 0),
                 (5, 2, 'Cutover', 'CUTOVER', 2, 5)) AS v(k, mig, name, kind, plan_n, day)
    JOIN plan ON plan.n = v.plan_n
    ORDER BY 1 DESC
    """
)


# Only migrations whose metadata has keys of its own: for one whose metadata was SQL NULL
# the toolkit's private "was NULL" mark would also go, and this scenario declares losses on
# its own tables only.
_NEW_SHAPE_LATE_ITERATIONS = sa.text(
    """
    INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, plm_id, created_at)
    SELECT md5(CAST(:seed AS text) || '/late_ite/' || m.mig_id)::uuid, m.mig_id,
           'DR 1', 'DR',
           (SELECT p.plm_id FROM plans_master_plm AS p
            WHERE p.plm_id::text <> m.mig_metadata ->> 'legacy_plm_id'
            ORDER BY p.plm_id LIMIT 1),
           TIMESTAMPTZ '2025-02-01 00:00:00+00'
    FROM migrations_mig AS m
    WHERE m.mig_metadata -> 'legacy_plm_id' IS NOT NULL
      AND m.mig_metadata - 'legacy_plm_id' <> '{}'::jsonb
      AND NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
    ORDER BY m.mig_name
    LIMIT 2
    """
)


def write_new_shape(conn: Connection, seed: int) -> None:
    """After the upgrade: give migrations iterations on different plans.

    Switches about half of the cutovers of migrations with several iterations to another
    plan, and adds two migrations that ran a DR and their cutover on different plans (one
    with a ``created_at`` tie between two DRs on different plans). Two migrations that had
    no iteration at upgrade time (and metadata keys of their own) get a first iteration, on
    another plan than the one kept for them.
    """
    params = {"seed": seed}
    conn.execute(_NEW_SHAPE_SWITCH_CUTOVERS, params)
    conn.execute(_NEW_SHAPE_MIGRATIONS, params)
    conn.execute(_NEW_SHAPE_ITERATIONS, params)
    conn.execute(_NEW_SHAPE_LATE_ITERATIONS, params)


# --- invariants ------------------------------------------------------------------------
# Each holds for ANY Model B data right after the upgrade (a round trip may run on a copy of
# a real database), so none relies on how the seed was made. The plan values themselves are
# proven by the round trip (the downgrade must rebuild migrations_mig.plm_id exactly from
# what the upgrade wrote) and, against the pre-upgrade rows, by the scenario's tests.

INVARIANTS = (
    Invariant(
        # Model B gave a migration exactly one plan, so right after the upgrade its
        # iterations must all carry one, and the same one.
        name="each iteration carries its migration's plan",
        sql="""
        SELECT i.mig_id FROM iterations_ite AS i
        GROUP BY i.mig_id
        HAVING count(DISTINCT i.plm_id) <> 1 OR count(i.plm_id) <> count(*)
        """,
    ),
    Invariant(
        name="a migration without iterations keeps its plan in mig_metadata.legacy_plm_id",
        sql="""
        SELECT m.mig_id FROM migrations_mig AS m
        WHERE NOT EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
          AND (jsonb_typeof(m.mig_metadata -> 'legacy_plm_id') = 'string'
               AND EXISTS (SELECT 1 FROM plans_master_plm AS p
                           WHERE p.plm_id::text = m.mig_metadata ->> 'legacy_plm_id'))
              IS NOT TRUE
        """,
    ),
    Invariant(
        # The plan of a migration with iterations lives on the iterations only.
        name="no kept plan on a migration with iterations",
        sql="""
        SELECT m.mig_id FROM migrations_mig AS m
        WHERE m.mig_metadata -> 'legacy_plm_id' IS NOT NULL
          AND EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
        """,
    ),
    Invariant(
        name="iterations_ite.plm_id is uuid NOT NULL with FK iterations_ite_plm_id_fkey",
        sql="""
        SELECT 'iterations_ite.plm_id is missing, nullable or not uuid'
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_attribute AS a
            WHERE a.attrelid = to_regclass('iterations_ite') AND a.attname = 'plm_id'
              AND NOT a.attisdropped AND a.attnotnull
              AND format_type(a.atttypid, a.atttypmod) = 'uuid')
        UNION ALL
        SELECT 'iterations_ite_plm_id_fkey is missing, not validated or not as expected'
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_constraint AS c
            WHERE c.conrelid = to_regclass('iterations_ite')
              AND c.conname = 'iterations_ite_plm_id_fkey' AND c.contype = 'f'
              AND c.convalidated
              AND pg_get_constraintdef(c.oid)
                  = 'FOREIGN KEY (plm_id) REFERENCES plans_master_plm(plm_id)')
        """,
    ),
    Invariant(
        name="migrations_mig.plm_id and its FK are gone",
        sql="""
        SELECT 'migrations_mig.plm_id still exists'
        WHERE EXISTS (
            SELECT 1 FROM pg_attribute AS a
            WHERE a.attrelid = to_regclass('migrations_mig') AND a.attname = 'plm_id'
              AND NOT a.attisdropped)
        UNION ALL
        SELECT c.conname::text FROM pg_constraint AS c
        WHERE c.conrelid = to_regclass('migrations_mig')
          AND (c.conname = 'migrations_mig_plm_id_fkey'
               OR (c.contype = 'f' AND c.confrelid = to_regclass('plans_master_plm')))
        """,
    ),
)

# An iteration comes back unchanged after downgrade + upgrade only if it ran the plan of
# its migration's first iteration (created_at, then ite_id: the order the downgrade uses).
ITERATIONS_OFF_THE_FIRST_PLAN = """
SELECT count(*) FROM iterations_ite AS i
JOIN (SELECT DISTINCT ON (mig_id) mig_id, plm_id FROM iterations_ite
      ORDER BY mig_id, created_at, ite_id) AS first_ite ON first_ite.mig_id = i.mig_id
WHERE i.plm_id <> first_ite.plm_id
"""

# A kept plan disappears on downgrade when the migration has iterations by then (their
# plan wins); the re-upgrade does not stash it again, so the metadata comes back without it.
KEPT_PLANS_SUPERSEDED = """
SELECT count(*) FROM migrations_mig AS m
WHERE m.mig_metadata -> 'legacy_plm_id' IS NOT NULL
  AND EXISTS (SELECT 1 FROM iterations_ite AS i WHERE i.mig_id = m.mig_id)
"""

SCENARIO = Scenario(
    name="iteration-decoupling",
    description=(
        "ADR 024 (Model C): the plan FK moves from migrations_mig down to iterations_ite; "
        "the plan of a migration without iterations is kept in mig_metadata.legacy_plm_id."
    ),
    script_location=SCRIPT_LOCATION,
    before=MODEL_B,
    after=MODEL_C,
    seed=seed_model_b,
    invariants=INVARIANTS,
    declared_losses=(
        DeclaredLoss(
            name="iterations of one migration on different plans keep the first one's plan",
            table="iterations_ite",
            column="plm_id",
            expected_sql=ITERATIONS_OFF_THE_FIRST_PLAN,
            description=(
                "Model B holds one plan per migration: the downgrade keeps the plan of the "
                "first iteration (by created_at, ite_id); after a re-upgrade every iteration "
                "of that migration carries it."
            ),
        ),
        DeclaredLoss(
            name="a kept plan superseded by a later iteration is dropped",
            table="migrations_mig",
            column="mig_metadata",
            expected_sql=KEPT_PLANS_SUPERSEDED,
            description=(
                "A migration that had no iteration at upgrade time keeps its plan in "
                "mig_metadata.legacy_plm_id; once it has iterations, the downgrade takes the "
                "first iteration's plan and removes the key, for good."
            ),
        ),
    ),
    # None: no row is re-created and nothing is regenerated (no new ids, no now()); the
    # re-upgrade derives iterations_ite.plm_id from restored values only, so every column
    # of every table must come back identical.
    volatile_columns={},
    new_shape=write_new_shape,
)


# --- the ADR's accepted cost: a migration's plans, through its iterations ----------------

_plans = sa.table(
    "plans_master_plm",
    sa.column("plm_id", UUID(as_uuid=True)),
    sa.column("plm_name", sa.Text()),
)
_migrations = sa.table(
    "migrations_mig",
    sa.column("mig_id", UUID(as_uuid=True)),
    sa.column("mig_metadata", JSONB()),
)
_iterations = sa.table(
    "iterations_ite",
    sa.column("mig_id", UUID(as_uuid=True)),
    sa.column("plm_id", UUID(as_uuid=True)),
    sa.column("created_at", sa.TIMESTAMP(timezone=True)),
)


def plans_of_migration_query(*, include_kept: bool = True) -> sa.Select[tuple[object, ...]]:
    """The plans the migration bound as ``mig_id`` ran, first used first.

    Columns: ``plm_id``, ``plm_name``, ``first_used_at`` (its earliest iteration),
    ``iterations`` (how many of the migration's iterations ran it). With ``include_kept``
    a migration without iterations also yields the plan kept in
    ``mig_metadata.legacy_plm_id`` (``first_used_at`` NULL, ``iterations`` 0).

    Usage: ``conn.execute(plans_of_migration_query(), {"mig_id": some_uuid})``.
    """
    mig_id = sa.bindparam("mig_id", type_=UUID(as_uuid=True))
    used = (
        sa.select(
            _plans.c.plm_id,
            _plans.c.plm_name,
            sa.func.min(_iterations.c.created_at).label("first_used_at"),
            sa.func.count().label("iterations"),
        )
        .join_from(_iterations, _plans, _plans.c.plm_id == _iterations.c.plm_id)
        .where(_iterations.c.mig_id == mig_id)
        .group_by(_plans.c.plm_id, _plans.c.plm_name)
    )
    if include_kept:
        kept_plan = sa.cast(_migrations.c.mig_metadata[KEPT_PLAN_KEY].astext, UUID(as_uuid=True))
        has_iterations = sa.exists().where(_iterations.c.mig_id == _migrations.c.mig_id)
        kept = (
            sa.select(
                _plans.c.plm_id,
                _plans.c.plm_name,
                sa.null().cast(sa.TIMESTAMP(timezone=True)).label("first_used_at"),
                sa.literal(0, sa.BigInteger()).label("iterations"),
            )
            .join_from(_migrations, _plans, _plans.c.plm_id == kept_plan)
            .where(_migrations.c.mig_id == mig_id, ~has_iterations)
        )
        rows = sa.union_all(used, kept).subquery("plans")
    else:
        rows = used.subquery("plans")
    return sa.select(rows).order_by(rows.c.first_used_at.asc().nulls_last(), rows.c.plm_id)
