"""ADR 024 Model B: plans, migrations on one plan, iterations

The schema before ADR 024, as other tools insert into it: a migration runs exactly one
master plan (``migrations_mig.plm_id`` NOT NULL) and its iterations inherit that plan.
Names, types, nullability, defaults and constraint names are a contract.

Revision ID: ad0240000b0b
Revises:
Create Date: 2024-01-15 09:00:00

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ad0240000b0b"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _uuid_pk(name: str) -> sa.Column[Any]:
    return sa.Column(
        name,
        postgresql.UUID(as_uuid=True),
        primary_key=True,
        server_default=sa.text("gen_random_uuid()"),
    )


def _created_at() -> sa.Column[Any]:
    return sa.Column(
        "created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    """Create the three tables, then the foreign keys between them."""
    # Tables first, foreign keys afterwards: creation order then never depends on which
    # table references which (the circular-FK pain that started ADR 024).
    op.create_table(
        "plans_master_plm",
        _uuid_pk("plm_id"),
        sa.Column("plm_name", sa.Text(), nullable=False),
        _created_at(),
    )
    op.create_table(
        "migrations_mig",
        _uuid_pk("mig_id"),
        sa.Column("mig_name", sa.Text(), nullable=False),
        sa.Column("plm_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("mig_metadata", postgresql.JSONB(), nullable=True),
        _created_at(),
    )
    op.create_table(
        "iterations_ite",
        _uuid_pk("ite_id"),
        sa.Column("mig_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("ite_name", sa.Text(), nullable=False),
        sa.Column("ite_type", sa.Text(), nullable=False),  # e.g. 'DR', 'CUTOVER'
        _created_at(),
    )
    op.create_foreign_key(
        "migrations_mig_plm_id_fkey", "migrations_mig", "plans_master_plm", ["plm_id"], ["plm_id"]
    )
    op.create_foreign_key(
        "iterations_ite_mig_id_fkey", "iterations_ite", "migrations_mig", ["mig_id"], ["mig_id"]
    )
    # Not part of the contract but harmless to inserters: "the iterations of a migration" is
    # the lookup every reader does, and after ADR 024 it is also how a migration's plans are
    # found (see plans_of_migration_query in scenarios/iteration_decoupling.py).
    op.create_index("ix_iterations_ite_mig_id", "iterations_ite", ["mig_id"])


def downgrade() -> None:
    """Drop the foreign keys, then the tables."""
    op.drop_constraint("iterations_ite_mig_id_fkey", "iterations_ite", type_="foreignkey")
    op.drop_constraint("migrations_mig_plm_id_fkey", "migrations_mig", type_="foreignkey")
    op.drop_table("iterations_ite")
    op.drop_table("migrations_mig")
    op.drop_table("plans_master_plm")
