"""The hash of one row's canonical form, which data fingerprints add up."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from toolkit.sql.idents import column_of


def row_hash(columns: Iterable[str], *, alias: str) -> sql.Composed:
    """The 64-bit hash of one row's canonical form: its columns sorted by name, as a record.

    The record text form quotes every field that needs it, so it is injective for a given
    column list; sorting by name makes it independent of physical column order. Measured as
    fast as hashing ``t::text``, about twice as fast as hashing ``to_jsonb(t)``.
    """
    ordered = sorted(columns)
    return sql.SQL("hashtextextended(ROW({})::text, 0)").format(
        sql.SQL(", ").join(column_of(alias, c) for c in ordered)
    )
