"""toy: items.owner_id becomes the junction item_owners (an item may have several owners)

Revision ID: toy_links
Revises: toy_base

The downgrade keeps each item's first link (created_at, id) and reports the others as lost,
the way the toolkit's operations do.
"""

from alembic import op
from sqlalchemy import text

from toolkit.ops.results import OpResult, publish

revision = "toy_links"
down_revision = "toy_base"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE item_owners ("
        " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " item_id int NOT NULL REFERENCES items (id) ON DELETE CASCADE,"
        " owner_id int NOT NULL REFERENCES owners (id),"
        " created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
        " CONSTRAINT uq_item_owner UNIQUE (item_id, owner_id))"
    )
    moved = op.get_bind().execute(
        text(
            "INSERT INTO item_owners (item_id, owner_id)"
            " SELECT id, owner_id FROM items WHERE owner_id IS NOT NULL ORDER BY id"
        )
    )
    op.execute("ALTER TABLE items DROP COLUMN owner_id")
    publish(OpResult("toy_promote", "items", {"moved": moved.rowcount}))


def downgrade() -> None:
    bind = op.get_bind()
    lost = bind.execute(
        text("SELECT count(*) - count(DISTINCT item_id) FROM item_owners")
    ).scalar_one()
    op.execute(
        "ALTER TABLE items ADD COLUMN owner_id int"
        " CONSTRAINT items_owner_id_fkey REFERENCES owners (id)"
    )
    collapsed = bind.execute(
        text(
            "UPDATE items SET owner_id = f.owner_id"
            " FROM (SELECT DISTINCT ON (item_id) item_id, owner_id FROM item_owners"
            "       ORDER BY item_id, created_at, id) AS f"
            " WHERE f.item_id = items.id"
        )
    )
    op.execute("DROP TABLE item_owners")
    publish(
        OpResult("toy_collapse", "item_owners", {"collapsed": collapsed.rowcount, "lost": lost})
    )
