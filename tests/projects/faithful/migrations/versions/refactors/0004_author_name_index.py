"""authors.name unique regardless of case: a unique index on lower(name)

Revision ID: 0004_author_name_index
Revises: 0003_metadata_table
Create Date: 2024-01-04 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004_author_name_index"
down_revision: str | Sequence[str] | None = "0003_metadata_table"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_constraint("authors_name_key", "authors", type_="unique")
    op.create_index("ix_authors_name_lower", "authors", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_authors_name_lower", table_name="authors")
    op.create_unique_constraint("authors_name_key", "authors", ["name"])
