"""tag names are unique: duplicates deleted first

Revision ID: 0002_unique_tag_names
Revises: 0001_initial
Create Date: 2024-01-02 00:00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_unique_tag_names"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("DELETE FROM tags AS t USING tags AS k WHERE k.name = t.name AND k.id < t.id")
    op.create_unique_constraint("tags_name_key", "tags", ["name"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint("tags_name_key", "tags", type_="unique")
