"""Run SQL composed with ``psycopg.sql`` on a SQLAlchemy connection.

Identifiers are always quoted by ``psycopg.sql.Identifier``; the composed text then runs
through the SQLAlchemy connection, so it shares the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import sql
from sqlalchemy import Connection, CursorResult


def execute(conn: Connection, query: sql.Composable) -> CursorResult[*tuple[Any, ...]]:
    """Execute ``query`` on ``conn``; values go in as ``sql.Literal``, never as raw text."""
    # SQLAlchemy always hands the driver a parameter list, so psycopg reads "%" as the
    # start of a placeholder: double every one (the query has no placeholders).
    return conn.exec_driver_sql(query.as_string(None).replace("%", "%%"))


def table_ref(schema: str, table: str) -> sql.Identifier:
    """``"schema"."table"``."""
    return sql.Identifier(schema, table)


def column_list(columns: Iterable[str], *, qualifier: str | None = None) -> sql.Composed:
    """``"a", "b"`` (or ``"q"."a", "q"."b"``) in the given order."""
    if qualifier is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(", ").join(sql.Identifier(qualifier, c) for c in columns)


def row_hash(columns: Iterable[str], *, alias: str) -> sql.Composed:
    """The 64-bit hash of one row's canonical form: its columns sorted by name, as a record.

    The record text form quotes every field that needs it, so it is injective for a given
    column list; sorting by name makes it independent of physical column order. Measured as
    fast as hashing ``t::text``, about twice as fast as hashing ``to_jsonb(t)``.
    """
    ordered = sorted(columns)
    return sql.SQL("hashtextextended(ROW({})::text, 0)").format(
        column_list(ordered, qualifier=alias)
    )
