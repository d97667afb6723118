"""A toy scenario (``toy/``: owners, items, items.owner_id -> junction item_owners) to test
the scenario round-trip engine itself, independently of the bundled scenarios."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import Connection, text

from toolkit.scenario import DeclaredLoss, Invariant, Scenario

SCRIPTS = Path(__file__).resolve().parent / "toy"


def owners_for(rows: int) -> int:
    """How many owners the seed creates for ``rows`` items."""
    return max(3, rows // 10)


def seed_items(conn: Connection, rows: int, seed: int) -> None:
    """Items 1..rows; every fourth has no owner; notes cycle over NULL, {}, nested, unicode."""
    conn.execute(
        text("INSERT INTO owners SELECT o, 'owner ' || o FROM generate_series(1, :n) AS o"),
        {"n": owners_for(rows)},
    )
    conn.execute(
        text(
            "INSERT INTO items (id, title, owner_id, note)"
            " SELECT i, 'item ' || i,"
            "        CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + (i * 7 + :seed) % :n END,"
            "        CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '{}'::jsonb"
            "             ELSE jsonb_build_object('é', i, 'nested', jsonb_build_object('k', i))"
            "        END"
            " FROM generate_series(1, :rows) AS i"
        ),
        {"rows": rows, "n": owners_for(rows), "seed": seed},
    )


def seed_links(conn: Connection, rows: int, seed: int) -> None:
    """The same data in the junction shape (for ``LOSSY``, which starts at toy_links)."""
    conn.execute(text("ALTER TABLE items ADD COLUMN owner_id int"))
    seed_items(conn, rows, seed)
    conn.execute(
        text(
            "INSERT INTO item_owners (item_id, owner_id)"
            " SELECT id, owner_id FROM items WHERE owner_id IS NOT NULL"
        )
    )
    conn.execute(text("ALTER TABLE items DROP COLUMN owner_id"))


def add_second_owners(conn: Connection, seed: int) -> None:
    """New shape: every fifth item with an owner gets a second one (only the junction can)."""
    conn.execute(
        text(
            "INSERT INTO item_owners (item_id, owner_id)"
            " SELECT l.item_id, 1 + (l.owner_id + :seed) % (SELECT count(*) FROM owners)"
            " FROM item_owners AS l WHERE l.item_id % 5 = 0"
            " ON CONFLICT DO NOTHING"
        ),
        {"seed": seed},
    )


EXTRA_LINKS = "SELECT count(*) - count(DISTINCT item_id) FROM item_owners"

FAITHFUL = Scenario(
    name="toy",
    description="items.owner_id becomes the junction item_owners",
    script_location=SCRIPTS,
    before="toy_base",
    after="toy_links",
    seed=seed_items,
    invariants=(
        Invariant(
            "at most one link per item after the upgrade",
            "SELECT item_id FROM item_owners GROUP BY item_id HAVING count(*) > 1",
        ),
    ),
    declared_losses=(
        DeclaredLoss(
            name="extra owners",
            table="item_owners",
            expected_sql=EXTRA_LINKS,
            column="owner_id",
            description="items.owner_id holds one owner: the first link is kept",
        ),
    ),
    volatile_columns={"item_owners": ("id", "created_at")},
    new_shape=add_second_owners,
)


#: A refactor whose downgrade forgets to copy items.note back.
LOSSY = Scenario(
    name="toy-lossy",
    description="items.note moves to item_notes, and does not come back",
    script_location=SCRIPTS,
    before="toy_links",
    after="toy_lossy",
    seed=seed_links,
)


def variant(**changes: object) -> Scenario:
    """``FAITHFUL`` with some fields replaced."""
    return dataclasses.replace(FAITHFUL, **changes)  # type: ignore[arg-type]
