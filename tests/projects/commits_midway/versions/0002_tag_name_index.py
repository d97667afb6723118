"""tags.name gets an index, built concurrently (outside a transaction)

Revision ID: 0002_tag_name_index
Revises: 0001_initial
"""

from alembic import op

revision = "0002_tag_name_index"
down_revision = "0001_initial"


def upgrade() -> None:
    op.execute("COMMIT")
    op.create_index("ix_tags_name", "tags", ["name"], postgresql_concurrently=True)


def downgrade() -> None:
    op.drop_index("ix_tags_name", table_name="tags")
