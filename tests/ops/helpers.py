"""Run operations inside an Alembic ``MigrationContext`` and look at the database.

``run_ops(engine, fn)`` runs ``fn(op)`` in one transaction like a revision does (rolled
back if it raises); ``offline_sql(fn)`` renders ``fn(op)`` as ``alembic upgrade --sql``
would, without a database. The ``describe_*`` helpers read schema and data for assertions.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import Connection, Engine, text

import toolkit.ops  # noqa: F401  (registers the operations)
from toolkit.ops.results import OpResult, recording


def run_ops(engine: Engine, fn: Callable[[Any], Any]) -> list[OpResult]:
    """Run ``fn(op)`` in one transaction on ``engine``; returns the published results."""
    with recording() as results, engine.begin() as conn:
        fn(Operations(MigrationContext.configure(conn)))
    return results


def offline_sql(fn: Callable[[Any], Any], *, paramstyle: str = "named") -> str:
    """The SQL ``fn(op)`` prints in offline mode (no database involved)."""
    buf = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        dialect_opts={"paramstyle": paramstyle},
        opts={"as_sql": True, "output_buffer": buf, "literal_binds": True},
    )
    with recording():
        fn(Operations(context))
    return buf.getvalue()


def execute(conn: Connection, sql: str) -> None:
    """Run (possibly several) statements on an autocommit connection, as written."""
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(sql)  # no parameters: psycopg sends the text untouched


def rows(conn: Connection, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """All rows of a query (``:name`` binds from ``params``), as tuples."""
    return [tuple(r) for r in conn.execute(text(sql), params)]


def run(conn: Connection, sql: str, **params: Any) -> None:
    """One statement with ``:name`` binds from ``params``."""
    conn.execute(text(sql), params)


def columns(conn: Connection, table: str) -> set[tuple[str, str, bool, str | None]]:
    """``(name, type, nullable, default)`` of every column of ``table``."""
    return set(
        rows(
            conn,
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped",
            t=table,
        )
    )


def constraints(conn: Connection, table: str) -> set[tuple[str, str]]:
    """``(name, pg_get_constraintdef)`` of every constraint of ``table`` (NOT NULL ones too)."""
    return set(
        rows(
            conn,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = to_regclass(:t)",
            t=table,
        )
    )


def indexes(conn: Connection, table: str) -> set[str]:
    """``pg_get_indexdef`` of every index of ``table``."""
    return {
        r[0] for r in rows(conn, "SELECT indexdef FROM pg_indexes WHERE tablename = :t", t=table)
    }


def tables(conn: Connection) -> set[str]:
    """The tables of the public schema."""
    return {r[0] for r in rows(conn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def schema_of(conn: Connection) -> dict[str, Any]:
    """Every public table's columns, constraints and indexes."""
    return {
        t: (columns(conn, t), constraints(conn, t), indexes(conn, t)) for t in sorted(tables(conn))
    }


def table_rows(conn: Connection, table: str) -> list[str]:
    """Every row of ``table`` as ``to_jsonb`` text, sorted (order-independent, exact)."""
    query = sql.SQL("SELECT to_jsonb(x)::text FROM {} AS x ORDER BY 1").format(
        sql.Identifier(table)
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    return [r[0] for r in driver.execute(query)]


def data_of(conn: Connection) -> dict[str, list[str]]:
    """Every public table's rows (see ``table_rows``)."""
    return {t: table_rows(conn, t) for t in sorted(tables(conn))}


def state_of(conn: Connection) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Schema and data of the whole public schema, to compare before/after."""
    return schema_of(conn), data_of(conn)
