"""notes.title is trimmed, in batches whose size comes from the environment

Revision ID: 0002_batched_backfill
Revises: 0001_initial
"""

import os

from alembic import op

revision = "0002_batched_backfill"
down_revision = "0001_initial"


def upgrade() -> None:
    batch = int(os.environ["BACKFILL_BATCH_SIZE"])
    op.execute(f"UPDATE notes SET title = btrim(title) WHERE id % {batch} = 0")  # noqa: S608


def downgrade() -> None:
    pass
