"""move notes.body to its own table note_bodies

Revision ID: 0002_move_body
Revises: 0001_initial
Create Date: 2024-01-02 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_move_body"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "note_bodies",
        sa.Column(
            "note_id",
            sa.BigInteger,
            sa.ForeignKey("notes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.execute(
        "INSERT INTO note_bodies (note_id, body) SELECT id, body FROM notes WHERE body IS NOT NULL"
    )
    op.drop_column("notes", "body")


def downgrade() -> None:
    """Downgrade schema."""
    op.add_column("notes", sa.Column("body", sa.Text))
    # BUG: the bodies are never copied back from note_bodies.
    op.drop_table("note_bodies")
