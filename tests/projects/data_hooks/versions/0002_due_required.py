"""every note has a due date

Revision ID: 0002_due_required
Revises: 0001_initial
Create Date: 2024-01-02 00:00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_due_required"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.alter_column("notes", "due", nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column("notes", "due", nullable=True)
