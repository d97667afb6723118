"""notes.rating (0.0 to 10.0) becomes notes.rating_pct (0 to 100)

Revision ID: 0005_rating_percent
Revises: 0004_author_name_index
Create Date: 2024-01-05 00:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005_rating_percent"
down_revision: str | Sequence[str] | None = "0004_author_name_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("notes", sa.Column("rating_pct", sa.SmallInteger))
    op.create_check_constraint(
        "notes_rating_pct_check", "notes", "rating_pct >= 0 AND rating_pct <= 100"
    )
    op.execute("UPDATE notes SET rating_pct = (rating * 10)::smallint")
    op.drop_column("notes", "rating")


def downgrade() -> None:
    """Downgrade schema."""
    op.add_column("notes", sa.Column("rating", sa.Numeric(4, 1)))
    op.create_check_constraint("notes_rating_check", "notes", "rating >= 0 AND rating <= 10")
    op.execute("UPDATE notes SET rating = rating_pct / 10.0")
    op.drop_column("notes", "rating_pct")
