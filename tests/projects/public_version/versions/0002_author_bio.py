"""authors get a bio

Revision ID: 0002_author_bio
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_author_bio"
down_revision = "0001_initial"


def upgrade() -> None:
    op.add_column("authors", sa.Column("bio", sa.Text))


def downgrade() -> None:
    op.drop_column("authors", "bio")
