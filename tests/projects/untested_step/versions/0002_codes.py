"""codes: a table whose CHECK needs a pattern no synthetic value matches

Revision ID: 0002_codes
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_codes"
down_revision = "0001_initial"


def upgrade() -> None:
    op.create_table(
        "codes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.Text, nullable=False),
        sa.CheckConstraint("code ~ '^[A-Z]{3}-[0-9]{4}$'", name="codes_code_format"),
    )


def downgrade() -> None:
    op.drop_table("codes")
