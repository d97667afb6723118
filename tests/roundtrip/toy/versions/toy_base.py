"""toy: owners and items, an item has at most one owner

Revision ID: toy_base
Revises:
"""

from alembic import op

revision = "toy_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE owners (id int PRIMARY KEY, name text NOT NULL)")
    op.execute(
        "CREATE TABLE items (id int PRIMARY KEY, title text NOT NULL,"
        " owner_id int REFERENCES owners (id), note jsonb)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE items")
    op.execute("DROP TABLE owners")
