"""move notes.metadata to its own table note_metadata

Revision ID: 0003_metadata_table
Revises: 0001_initial
Create Date: 2024-01-03 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0003_metadata_table"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "note_metadata",
        sa.Column(
            "note_id",
            sa.BigInteger,
            sa.ForeignKey("notes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("data", postgresql.JSONB, nullable=False),
    )
    op.execute(
        "INSERT INTO note_metadata (note_id, data)"
        " SELECT id, metadata FROM notes WHERE metadata IS NOT NULL"
    )
    op.drop_column("notes", "metadata")


def downgrade() -> None:
    """Downgrade schema."""
    op.add_column("notes", sa.Column("metadata", postgresql.JSONB))
    # BUG: notes without a note_metadata row had NULL, not {}.
    op.execute(
        "UPDATE notes SET metadata = coalesce("
        " (SELECT m.data FROM note_metadata m WHERE m.note_id = notes.id), '{}'::jsonb)"
    )
    op.drop_table("note_metadata")
