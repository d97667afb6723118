"""Fill every table of a schema with synthetic rows, set-based and deterministic by seed.

One ``INSERT ... SELECT`` over ``generate_series`` per table, parents before children.
Foreign keys pick existing parent rows (deterministically, NULL now and then where
nullable); check constraints filter the candidates; ``ON CONFLICT DO NOTHING`` drops the
few candidates a unique constraint rejects. Foreign keys that close a cycle (including a
table referencing itself) are filled by an ``UPDATE`` once every table has rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from toolkit.seeding.reflect import ForeignKey, TableInfo, reflect_tables
from toolkit.seeding.values import Unsupported, ValueContext, allowed_values, value_expression
from toolkit.verify import DEFAULT_EXCLUDED_TABLES
from toolkit.verify.compose import execute, table_ref

#: Candidates generated per wanted row, so that check constraints can filter some out.
CANDIDATES_PER_ROW = 4


@dataclass(frozen=True)
class SeededTable:
    """How many rows a table received, and why not more when it matters."""

    name: str
    rows: int
    note: str = ""


@dataclass(frozen=True)
class SeedReport:
    """What ``seed_database`` did, table by table, in insertion order."""

    schema: str
    seed: int
    tables: tuple[SeededTable, ...]
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)

    def summary(self) -> str:
        """One line: rows per table."""
        return f"{self.total} rows in {len(self.tables)} tables: " + ", ".join(
            f"{t.name} {t.rows}" for t in self.tables
        )

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(f"{t.name}: {t.note}" for t in self.tables if t.note)


def seed_database(
    conn: Connection,
    *,
    rows: int = 20,
    seed: int = 0,
    schema: str = "public",
    exclude_tables: Sequence[str] = DEFAULT_EXCLUDED_TABLES,
) -> SeedReport:
    """Insert about ``rows`` synthetic rows into every table of ``schema``.

    Respects types, NOT NULL, primary, unique and foreign keys, enum types and enum-like
    check constraints; other check constraints filter candidates. A table that cannot be
    filled (unsupported type in a NOT NULL column, a failed insert) gets a note, not an error.
    """
    started = time.perf_counter()
    tables = {n: t for n, t in reflect_tables(conn, schema).items() if n not in exclude_tables}
    order, deferred, blocked = insertion_order(tables)
    seeded: list[SeededTable] = []
    for name in order:
        if name in blocked:
            seeded.append(SeededTable(name, 0, blocked[name]))
            continue
        table = tables[name]
        skip = {c for fk in deferred.get(name, ()) for c in fk.columns}
        seeded.append(_insert(conn, schema, table, rows=rows, seed=seed, null_columns=skip))
    for name, fks in deferred.items():
        for fk in fks:
            note = _fill_deferred(conn, schema, tables[name], fk, seed)
            if note:
                seeded = [
                    SeededTable(s.name, s.rows, f"{s.note}; {note}".strip("; "))
                    if s.name == name
                    else s
                    for s in seeded
                ]
    return SeedReport(schema, seed, tuple(seeded), time.perf_counter() - started)


def insertion_order(
    tables: dict[str, TableInfo],
) -> tuple[list[str], dict[str, list[ForeignKey]], dict[str, str]]:
    """Parents first. Returns the order, the FKs to fill afterwards, the tables left empty.

    A foreign key closing a cycle is deferred when its columns are nullable; a table whose
    cycle can only be closed through NOT NULL columns is left empty, with the reason.
    """
    order: list[str] = []
    deferred: dict[str, list[ForeignKey]] = {}
    blocked: dict[str, str] = {}
    pending = dict(sorted(tables.items()))
    while pending:
        ready = [n for n, t in pending.items() if not _waits_on(t, pending)]
        if not ready:
            name, table = next(iter(pending.items()))
            cyclic = [fk for fk in table.foreign_keys if fk.ref_table in pending]
            if all(not table.column(c).not_null for fk in cyclic for c in fk.columns):
                deferred[name] = cyclic
            else:
                blocked[name] = "NOT NULL foreign keys form a cycle; left empty"
            ready = [name]
        for name in ready:
            table = pending.pop(name)
            own = [fk for fk in table.foreign_keys if fk.ref_table == name]
            nullable = all(not table.column(c).not_null for fk in own for c in fk.columns)
            if own and nullable:
                deferred.setdefault(name, []).extend(own)
            elif own and name not in blocked:
                blocked[name] = "NOT NULL foreign key to itself; left empty"
            order.append(name)
    return order, deferred, blocked


def _waits_on(table: TableInfo, pending: dict[str, TableInfo]) -> bool:
    return any(fk.ref_table in pending and fk.ref_table != table.name for fk in table.foreign_keys)


def _insert(
    conn: Connection,
    schema: str,
    table: TableInfo,
    *,
    rows: int,
    seed: int,
    null_columns: set[str],
) -> SeededTable:
    fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
    distinct = {c for unique in table.unique_sets for c in unique} - fk_columns
    targets: list[sql.Composable] = []
    names: list[str] = []
    for position, column in enumerate(table.columns):
        if column.generated_by_db or column.name in fk_columns or column.name in null_columns:
            continue
        ctx = ValueContext(
            table=table.name,
            position=position,
            seed=seed,
            distinct=column.name in distinct,
            allowed=allowed_values(column.name, table.checks),
        )
        try:
            targets.append(value_expression(column, ctx))
        except Unsupported as exc:
            if column.not_null:
                return SeededTable(table.name, 0, f"no generator for {column.name} ({exc})")
            continue
        names.append(column.name)
    joins, fk_targets, fk_names = _foreign_key_joins(table, seed, null_columns)
    targets += fk_targets
    names += fk_names
    if not names:
        return SeededTable(table.name, 0, "no column to fill")
    checks = [
        sql.SQL("({}) IS NOT FALSE").format(sql.SQL(check.expression))
        for check in table.checks
        if set(check.columns) <= set(names)
    ]
    # The series number travels beside the values; its name must not be a column's.
    order_name = "lossless_n"
    while order_name in names:
        order_name += "_"
    order = sql.Identifier(order_name)
    candidates = sql.SQL(
        "SELECT g AS {order}, {values} FROM generate_series(1::bigint, {count}) AS s(g) {joins}"
    ).format(
        order=order,
        values=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(v, sql.Identifier(n))
            for v, n in zip(targets, names, strict=True)
        ),
        count=sql.Literal(rows * CANDIDATES_PER_ROW),
        joins=sql.SQL(" ").join(joins),
    )
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM ({candidates}) AS c"
        " WHERE {checks} ORDER BY {order} LIMIT {rows} ON CONFLICT DO NOTHING"
    ).format(
        table=table_ref(schema, table.name),
        columns=sql.SQL(", ").join(sql.Identifier(n) for n in names),
        candidates=candidates,
        order=order,
        checks=sql.SQL(" AND ").join(checks) if checks else sql.SQL("true"),
        rows=sql.Literal(rows),
    )
    inserted, error = _attempt(conn, statement)
    if error is not None:
        return SeededTable(table.name, 0, f"insert failed: {error}")
    note = "" if inserted >= rows else f"{inserted} of {rows} rows (constraints rejected the rest)"
    return SeededTable(table.name, inserted, note)


def _foreign_key_joins(
    table: TableInfo, seed: int, null_columns: set[str]
) -> tuple[list[sql.Composable], list[sql.Composable], list[str]]:
    joins: list[sql.Composable] = []
    values: list[sql.Composable] = []
    names: list[str] = []
    unique_columns = {c for unique in table.unique_sets for c in unique}
    walked = False
    for n, fk in enumerate(table.foreign_keys):
        if set(fk.columns) & null_columns or any(c in names for c in fk.columns):
            continue
        alias = f"f{n}"
        nullable = not any(table.column(c).not_null for c in fk.columns)
        # The first FK that is (part of) a unique key walks the parents in order, so that
        # one-to-one children do not collide; other FKs pick parents pseudo-randomly.
        walk = not walked and set(fk.columns) <= unique_columns
        walked = walked or walk
        step = 1 if walk else 104729 + n * 7919
        joins.append(
            sql.SQL(
                "{kind} ({parents}) AS {alias}"
                " ON {alias}.rn = 1 + ((g * {step} + {offset}) % {alias}.cnt)"
            ).format(
                kind=sql.SQL("LEFT JOIN" if nullable else "JOIN"),
                parents=_numbered_parents(fk),
                alias=sql.Identifier(alias),
                step=sql.Literal(step),
                offset=sql.Literal(seed * 31 + n),
            )
        )
        for i, column in enumerate(fk.columns):
            value: sql.Composable = sql.Identifier(alias, f"v{i}")
            if nullable:
                value = sql.SQL("CASE WHEN (g + {}) % 5 = 0 THEN NULL ELSE {} END").format(
                    sql.Literal(n), value
                )
            values.append(value)
            names.append(column)
    return joins, values, names


def _numbered_parents(fk: ForeignKey) -> sql.Composed:
    return sql.SQL(
        "SELECT {values}, row_number() OVER (ORDER BY {order}) AS rn, count(*) OVER () AS cnt"
        " FROM {parent} WHERE {not_null}"
    ).format(
        values=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier(c), sql.Identifier(f"v{i}"))
            for i, c in enumerate(fk.ref_columns)
        ),
        order=sql.SQL(", ").join(sql.Identifier(c) for c in fk.ref_columns),
        parent=table_ref(fk.ref_schema, fk.ref_table),
        not_null=sql.SQL(" AND ").join(
            sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.ref_columns
        ),
    )


def _fill_deferred(
    conn: Connection, schema: str, table: TableInfo, fk: ForeignKey, seed: int
) -> str:
    order = (
        sql.SQL(", ").join(sql.Identifier("t", c) for c in table.key)
        if table.key
        else sql.SQL("t::text")
    )
    statement = sql.SQL(
        "WITH c AS (SELECT t.ctid AS tid, row_number() OVER (ORDER BY {order}) AS rn"
        "           FROM {table} AS t),"
        " p AS ({parents})"
        " UPDATE {table} AS t SET ({columns}) = ROW({values})"
        " FROM c JOIN p ON p.rn = 1 + ((c.rn * 7919 + {offset}) % p.cnt)"
        " WHERE t.ctid = c.tid AND c.rn % 3 <> 0"
    ).format(
        order=order,
        table=table_ref(schema, table.name),
        parents=_numbered_parents(fk),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in fk.columns),
        values=sql.SQL(", ").join(sql.Identifier("p", f"v{i}") for i in range(len(fk.columns))),
        offset=sql.Literal(seed),
    )
    _, error = _attempt(conn, statement)
    return f"could not fill {fk.name}: {error}" if error else ""


def _attempt(conn: Connection, statement: sql.Composable) -> tuple[int, str | None]:
    """Run one statement; a failure is returned, and does not abort a caller's transaction."""
    autocommit = bool(getattr(conn.connection.driver_connection, "autocommit", False))
    try:
        if autocommit:
            return execute(conn, statement).rowcount, None
        with conn.begin_nested():
            return execute(conn, statement).rowcount, None
    except DBAPIError as exc:
        return 0, str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
