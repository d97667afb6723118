"""every account gets an API key, a version-4 UUID

Revision ID: 0002_api_keys
Revises: 0001_accounts
Create Date: 2024-01-02 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_api_keys"
down_revision: str | Sequence[str] | None = "0001_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "accounts",
        sa.Column("api_key", sa.Uuid, nullable=False, server_default=sa.text("uuid_generate_v4()")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("accounts", "api_key")
