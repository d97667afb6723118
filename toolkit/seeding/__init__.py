"""Synthetic rows for any reflected schema: ``seed_database(conn, rows=20, seed=0)``.

Used by the generic project round trip (and the CLI's ``seed`` for a team's project): it
needs no knowledge of the schema beyond what the catalogs say.
"""

from __future__ import annotations

from toolkit.seeding.reflect import empty_tables, table_names
from toolkit.seeding.seed import SeededTable, SeedReport, insertion_order, seed_database

__all__ = [
    "SeedReport",
    "SeededTable",
    "empty_tables",
    "insertion_order",
    "seed_database",
    "table_names",
]
