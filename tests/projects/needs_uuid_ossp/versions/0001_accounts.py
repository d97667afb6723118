"""accounts keyed by uuid_generate_v4() from the uuid-ossp extension

Revision ID: 0001_accounts
Revises:
Create Date: 2024-01-01 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001_accounts"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("uuid_generate_v4()")),
        sa.Column("email", sa.Text, nullable=False, unique=True),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("accounts")
    op.execute('DROP EXTENSION IF EXISTS "uuid-ossp"')
