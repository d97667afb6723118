"""toy: items.note moves to item_notes; the downgrade forgets to copy the notes back

Revision ID: toy_lossy
Revises: toy_links
"""

from alembic import op

revision = "toy_lossy"
down_revision = "toy_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE item_notes (item_id int PRIMARY KEY REFERENCES items (id)"
        " ON DELETE CASCADE, note jsonb NOT NULL)"
    )
    op.execute("INSERT INTO item_notes SELECT id, note FROM items WHERE note IS NOT NULL")
    op.execute("ALTER TABLE items DROP COLUMN note")


def downgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN note jsonb")
    op.execute("DROP TABLE item_notes")
