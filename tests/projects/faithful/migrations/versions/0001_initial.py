"""initial schema: authors, notes, tags

Revision ID: 0001_initial
Revises:
Create Date: 2024-01-01 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "authors",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("email", sa.String(120)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("author_id", sa.Uuid, sa.ForeignKey("authors.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rating", sa.Numeric(4, 1)),
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("due", sa.Date),
        sa.Column("metadata", postgresql.JSONB),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'archived')", name="notes_status_check"
        ),
        sa.CheckConstraint("rating >= 0 AND rating <= 10", name="notes_rating_check"),
    )
    op.create_index("ix_notes_author_id", "notes", ["author_id"])
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.Text),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("tags")
    op.drop_index("ix_notes_author_id", table_name="notes")
    op.drop_table("notes")
    op.drop_table("authors")
