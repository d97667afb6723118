"""Take a snapshot: structure from the catalogs, data as one aggregate query per table.

The data of a table is summarised as ``count(*)`` and the sum (as ``numeric``: no overflow)
of a 64-bit hash of each row's canonical text form. A sum is order-independent, so the
physical order of rows does not matter; no row leaves the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from psycopg import sql
from sqlalchemy import Connection, text

from toolkit.sql.idents import qualified
from toolkit.sql.online import PROGRESS_TABLE
from toolkit.sql.run import execute
from toolkit.sql.stash import STASH_TABLE
from toolkit.verify.fingerprint import CatalogEntry, catalog_entries
from toolkit.verify.model import Snapshot, TableSnapshot
from toolkit.verify.row_hash import row_hash
from toolkit.verify.session import canonical_settings
from toolkit.verify.structure import TableStructure, read_structure

#: Tables that hold no user data: Alembic's version table, the toolkit's own stash and its
#: table of online runs under way.
DEFAULT_EXCLUDED_TABLES = ("alembic_version", STASH_TABLE, PROGRESS_TABLE)


def take_snapshot(
    conn: Connection,
    *,
    schema: str = "public",
    exclude_tables: Sequence[str] = DEFAULT_EXCLUDED_TABLES,
    exclude_columns: Mapping[str, Sequence[str]] | None = None,
) -> Snapshot:
    """Snapshot ``schema``: every table's structure, row count and row-hash sum.

    ``exclude_columns`` (table -> columns) leaves volatile columns out of the data
    fingerprint (they stay in the structure); names that match no column are ignored, so one
    mapping can serve snapshots taken before and after a change. Tables in
    ``exclude_tables`` are skipped.
    """
    excluded = {t: tuple(sorted(set(c))) for t, c in (exclude_columns or {}).items()}
    with canonical_settings(conn):
        structure = read_structure(conn, schema)
        tables = tuple(
            _table_snapshot(conn, schema, table, excluded.get(table.name, ()))
            for table in structure.tables
            if table.name not in exclude_tables
        )
        version = conn.execute(text("SHOW server_version")).scalar_one()
    skipped = set(exclude_tables)
    catalog = tuple(
        e for e in catalog_entries(conn, (schema,)) if _in_snapshot(e) and e.table not in skipped
    )
    return Snapshot(
        schema=schema,
        tables=tables,
        sequences=structure.sequences,
        enums=structure.enums,
        views=structure.views,
        catalog=catalog,
        server_version=str(version).split()[0],
    )


#: Fingerprint entries the typed snapshot fields do not already hold.
STANDALONE_KINDS = frozenset({"policy", "statistics", "rule"})


def _in_snapshot(entry: CatalogEntry) -> bool:
    if entry.kind == "sequence position":
        return False  # SequenceSnapshot.last_value holds it
    return entry.part == "detail" or entry.kind in STANDALONE_KINDS


def fingerprinted_columns(table: TableStructure, excluded: Iterable[str]) -> list[str]:
    """The columns that enter a row's fingerprint: all but the excluded, sorted by name."""
    skip = set(excluded)
    return sorted(c.name for c in table.columns if c.name not in skip)


def _table_snapshot(
    conn: Connection, schema: str, table: TableStructure, excluded: tuple[str, ...]
) -> TableSnapshot:
    # ONLY: a parent's fingerprint holds its own rows; its children are tables of their own.
    query = sql.SQL("SELECT count(*), coalesce(sum({}), 0) FROM ONLY {} AS t").format(
        row_hash(fingerprinted_columns(table, excluded), alias="t"),
        qualified(table.name, schema),
    )
    rows, total = execute(conn, query).one()
    return TableSnapshot(
        name=table.name,
        columns=table.columns,
        constraints=table.constraints,
        indexes=table.indexes,
        triggers=table.triggers,
        rows=int(rows),
        fingerprint=int(total),
        excluded_columns=tuple(c for c in excluded if c in {col.name for col in table.columns}),
    )
