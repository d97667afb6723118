"""authors get a bio; the downgrade leaves a stray row in alembic_version

Revision ID: 0002_stray_version_row
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_stray_version_row"
down_revision = "0001_initial"


def upgrade() -> None:
    op.add_column("authors", sa.Column("bio", sa.Text))


def downgrade() -> None:
    op.drop_column("authors", "bio")
    # BUG: a hand-written "fix" of the version table.
    op.execute("INSERT INTO alembic_version (version_num) VALUES ('0001_stray')")
