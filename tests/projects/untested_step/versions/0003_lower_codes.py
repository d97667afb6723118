"""codes are stored in lower case

Revision ID: 0003_lower_codes
Revises: 0002_codes
"""

from alembic import op

revision = "0003_lower_codes"
down_revision = "0002_codes"


def upgrade() -> None:
    op.drop_constraint("codes_code_format", "codes", type_="check")
    op.execute("UPDATE codes SET code = lower(code)")


def downgrade() -> None:
    op.execute("UPDATE codes SET code = upper(code)")
    op.create_check_constraint("codes_code_format", "codes", "code ~ '^[A-Z]{3}-[0-9]{4}$'")
