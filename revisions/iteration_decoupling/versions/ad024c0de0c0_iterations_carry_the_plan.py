"""ADR 024: iterations carry the plan

"Model C": the iteration, not the migration, joins a migration run to a master plan, so
one migration can run a dress rehearsal (DR) on one plan and its cutover on another.

Upgrade: ``iterations_ite.plm_id`` (NOT NULL, FK ``iterations_ite_plm_id_fkey``) is filled
from each iteration's migration; a migration without iterations keeps its plan in
``mig_metadata.legacy_plm_id``; ``migrations_mig.plm_id`` and its FK go away.

Downgrade: a migration takes the plan of its first iteration (by ``created_at, ite_id``),
else the plan kept in its metadata (the key is removed again). Iterations of one migration
that ran different plans keep only the first one's plan: a declared loss, counted as "lost".
A migration with neither an iteration nor a kept plan cannot get its NOT NULL ``plm_id``
back: the downgrade refuses before changing anything and names those migrations.

Revision ID: ad024c0de0c0
Revises: ad0240000b0b
Create Date: 2024-03-04 09:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql

from toolkit.op import op

revision: str = "ad024c0de0c0"
down_revision: str | Sequence[str] | None = "ad0240000b0b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Where the plan of a migration without iterations is kept while the schema has no column
# for it. The application never writes this key; a downgrade consumes it.
KEPT_PLAN_COLUMN = "mig_metadata"
KEPT_PLAN_KEY = "legacy_plm_id"

# What the operations would otherwise read from the catalog. Named here so that `--sql`
# (offline, no database to read) renders the very script that runs online.
PLAN_TYPE = postgresql.UUID()
PLANS = "plans_master_plm"
MIGRATION_KEY = "mig_id"


def upgrade() -> None:
    """Move the plan FK from migrations down to their iterations."""
    op.move_fk_to_child(
        "migrations_mig",
        "plm_id",
        child="iterations_ite",
        child_fk="mig_id",
        fk_name="iterations_ite_plm_id_fkey",
        nullable=False,
        type_=PLAN_TYPE,
        referent_table=PLANS,
        parent_key=MIGRATION_KEY,
        jsonb_column=KEPT_PLAN_COLUMN,
        key=KEPT_PLAN_KEY,
    )


def downgrade() -> None:
    """Give every migration back one plan: its first iteration's, else the kept one."""
    op.move_fk_to_parent(
        "iterations_ite",
        "plm_id",
        parent="migrations_mig",
        child_fk="mig_id",
        # An explicit, total order: created_at ties are broken by the primary key, so the
        # chosen plan never depends on the physical row order.
        order_by=("created_at", "ite_id"),
        fk_name="migrations_mig_plm_id_fkey",
        nullable=False,
        type_=PLAN_TYPE,
        referent_table=PLANS,
        parent_key=MIGRATION_KEY,
        jsonb_column=KEPT_PLAN_COLUMN,
        key=KEPT_PLAN_KEY,
    )
