"""migration 013 schema

The schema as it stood before migration 014: goals, sprints, targets and commitments tied
together by plain foreign-key columns. Other tools insert into these tables, so column names,
types, nullability, defaults and constraint names are a contract. Constraint names are
spelled out even though they equal PostgreSQL's defaults, so that the contract is readable
here and identical in offline SQL.

Revision ID: e1a0c0de0013
Revises:
Create Date: 2024-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "e1a0c0de0013"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[object]:
    return sa.Column("id", UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"))


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(), nullable=False, server_default=sa.text("now()"))


def _uuid(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, UUID(as_uuid=True), nullable=nullable)


def upgrade() -> None:
    """Create client_goals, sprints, targets, commitments and commitment_target_links."""
    op.create_table(
        "client_goals",
        _id(),
        _uuid("client_id", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="client_goals_pkey"),
    )
    op.create_table(
        "sprints",
        _id(),
        _uuid("client_id", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        _uuid("goal_id", nullable=True),
        sa.Column("metadata", JSONB(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="sprints_pkey"),
        sa.ForeignKeyConstraint(["goal_id"], ["client_goals.id"], name="sprints_goal_id_fkey"),
    )
    op.create_table(
        "targets",
        _id(),
        sa.Column("title", sa.Text(), nullable=False),
        _uuid("goal_id", nullable=False),
        _uuid("sprint_id", nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="targets_pkey"),
        sa.ForeignKeyConstraint(["goal_id"], ["client_goals.id"], name="targets_goal_id_fkey"),
        sa.ForeignKeyConstraint(["sprint_id"], ["sprints.id"], name="targets_sprint_id_fkey"),
    )
    op.create_table(
        "commitments",
        _id(),
        _uuid("client_id", nullable=False),
        _uuid("session_id", nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        _uuid("goal_id", nullable=True),
        _uuid("sprint_id", nullable=True),
        sa.Column("metadata", JSONB(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="commitments_pkey"),
        sa.ForeignKeyConstraint(["goal_id"], ["client_goals.id"], name="commitments_goal_id_fkey"),
        sa.ForeignKeyConstraint(["sprint_id"], ["sprints.id"], name="commitments_sprint_id_fkey"),
    )
    op.create_table(
        "commitment_target_links",
        _id(),
        _uuid("commitment_id", nullable=False),
        _uuid("target_id", nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="commitment_target_links_pkey"),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["commitments.id"],
            name="commitment_target_links_commitment_id_fkey",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["targets.id"],
            name="commitment_target_links_target_id_fkey",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "commitment_id",
            "target_id",
            name="commitment_target_links_commitment_id_target_id_key",
        ),
    )


def downgrade() -> None:
    """Drop the five tables, dependents first."""
    for table in ("commitment_target_links", "commitments", "targets", "sprints", "client_goals"):
        op.drop_table(table)
