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
from toolkit.seeding.values import (
    REPEATED_G,
    Unsupported,
    ValueContext,
    allowed_values,
    check_literals,
    value_expression,
)
from toolkit.sql.idents import column_of, ident, idents, qualified
from toolkit.sql.run import execute
from toolkit.verify import DEFAULT_EXCLUDED_TABLES

#: Candidates generated per wanted row, so that check constraints can filter some out.
CANDIDATES_PER_ROW = 4
#: Then, if a table is not full yet (checks, conflicts), this many times more.
CHECKED_FACTOR = 8
#: Nullable foreign keys of a table whose NULLs fall on independent base-3 digits of ``g``.
NULL_DIGITS = 5


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
        count = len(self.tables)
        return f"{self.total} rows in {count} table{'' if count == 1 else 's'}: " + ", ".join(
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

    Only NOT NULL foreign keys constrain the order; among the tables they allow, those
    whose nullable foreign keys point at tables already filled come first. A nullable
    foreign key to a table filled later (a cycle, or the table itself) is filled by an
    ``UPDATE`` afterwards. Tables on a cycle of NOT NULL foreign keys, and those needing
    them, are left empty, with the reason.
    """
    required = {
        name: {fk.ref_table for fk in table.foreign_keys if _required(table, fk)} & set(tables)
        for name, table in tables.items()
    }
    order: list[str] = []
    placed: set[str] = set()
    pending = sorted(tables)
    while pending:
        ready = [n for n in pending if required[n] - {n} <= placed]
        if not ready:
            break
        settled = [n for n in ready if _parents(tables[n]) - {n} <= placed | _outside(tables)]
        name = (settled or ready)[0]
        pending.remove(name)
        order.append(name)
        placed.add(name)
    blocked = {name: _why_empty(name, required, set(pending)) for name in pending}
    for name in order:
        if name in required[name]:
            blocked[name] = "NOT NULL foreign key to itself; left empty"
    position = {name: n for n, name in enumerate(order)}
    deferred: dict[str, list[ForeignKey]] = {}
    for name in order:
        later = [
            fk
            for fk in tables[name].foreign_keys
            if fk.ref_table in position
            and position[fk.ref_table] >= position[name]
            and not _required(tables[name], fk)
        ]
        if later:
            deferred[name] = later
    return order + pending, deferred, blocked


def _required(table: TableInfo, fk: ForeignKey) -> bool:
    return any(table.column(c).not_null for c in fk.columns)


def _parents(table: TableInfo) -> set[str]:
    return {fk.ref_table for fk in table.foreign_keys}


def _outside(tables: dict[str, TableInfo]) -> set[str]:
    return {fk.ref_table for t in tables.values() for fk in t.foreign_keys} - set(tables)


def _why_empty(name: str, required: dict[str, set[str]], pending: set[str]) -> str:
    """Name the cycle of NOT NULL foreign keys ``name`` is on, or the table it waits for."""
    path = _cycle(name, required, pending)
    if path:
        return f"NOT NULL foreign keys form a cycle ({' -> '.join(path)}); left empty"
    waits = ", ".join(sorted(required[name] & pending))
    return f"NOT NULL foreign keys need rows in {waits}, which stays empty; left empty"


def _cycle(start: str, required: dict[str, set[str]], pending: set[str]) -> list[str]:
    """The shortest path of NOT NULL foreign keys from ``start`` back to it, if any."""
    paths = [[start]]
    seen = {start}
    while paths:
        extended = []
        for path in paths:
            for parent in sorted(required[path[-1]] & pending):
                if parent == start:
                    return [*path, start]
                if parent not in seen:
                    seen.add(parent)
                    extended.append([*path, parent])
        paths = extended
    return []


def _insert(
    conn: Connection,
    schema: str,
    table: TableInfo,
    *,
    rows: int,
    seed: int,
    null_columns: set[str],
    literals: bool = True,
) -> SeededTable:
    """One ``INSERT ... SELECT``; if the checks' constants do not fit the column (a cast or
    a length fails), once more without them."""
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
            literals=check_literals(column.name, table.checks) if literals else (),
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
        # Nothing to write but what the database fills itself (a serial id, defaults).
        statement: sql.Composable = sql.SQL(
            "INSERT INTO {} SELECT FROM generate_series(1, {})"
        ).format(qualified(table.name, schema), sql.Literal(rows))
        inserted, error = _attempt(conn, statement)
    else:
        inserted, error = 0, None
        # Most tables are full after the first range; checks or conflicts may need more.
        for first, last in (
            (1, rows * CANDIDATES_PER_ROW),
            (rows * CANDIDATES_PER_ROW + 1, rows * CANDIDATES_PER_ROW * CHECKED_FACTOR),
        ):
            wanted = rows - inserted
            added, error = _attempt(
                conn, _insert_select(schema, table, names, targets, joins, wanted, first, last)
            )
            inserted += added
            if error is not None and inserted:
                error = None  # the first range went in: keep it
            if error is not None or inserted >= rows:
                break
    if error is not None and literals and any(check_literals(n, table.checks) for n in names):
        return _insert(
            conn, schema, table, rows=rows, seed=seed, null_columns=null_columns, literals=False
        )
    if error is not None:
        return SeededTable(table.name, 0, f"insert failed: {error}")
    note = "" if inserted >= rows else f"{inserted} of {rows} rows (constraints rejected the rest)"
    return SeededTable(table.name, inserted, note)


def _insert_select(
    schema: str,
    table: TableInfo,
    names: list[str],
    targets: list[sql.Composable],
    joins: list[sql.Composable],
    rows: int,
    first: int,
    last: int,
) -> sql.Composable:
    """``INSERT ... SELECT`` of the first ``rows`` candidates numbered ``first`` to ``last``
    that every check accepts."""
    checks = [
        sql.SQL("({}) IS NOT FALSE").format(sql.SQL(check.expression))
        for check in table.checks
        if set(check.columns) <= set(names)
    ]
    # The series number travels beside the values; its name must not be a column's.
    order_name = "lossless_n"
    while order_name in names:
        order_name += "_"
    order = ident(order_name)
    candidates = sql.SQL(
        "SELECT g AS {order}, {values} FROM generate_series({first}::bigint, {last}) AS s(g)"
        " {joins}"
    ).format(
        order=order,
        values=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(v, ident(n)) for v, n in zip(targets, names, strict=True)
        ),
        first=sql.Literal(first),
        last=sql.Literal(last),
        joins=sql.SQL(" ").join(joins),
    )
    return sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM ({candidates}) AS c"
        " WHERE {checks} ORDER BY {order} LIMIT {rows} ON CONFLICT DO NOTHING"
    ).format(
        table=qualified(table.name, schema),
        columns=idents(names),
        candidates=candidates,
        order=order,
        checks=sql.SQL(" AND ").join(checks) if checks else sql.SQL("true"),
        rows=sql.Literal(rows),
    )


def _foreign_key_joins(
    table: TableInfo, seed: int, null_columns: set[str]
) -> tuple[list[sql.Composable], list[sql.Composable], list[str]]:
    joins: list[sql.Composable] = []
    values: list[sql.Composable] = []
    names: list[str] = []
    unique_columns = {c for unique in table.unique_sets for c in unique}
    walked = False
    nullable_seen = 0
    for n, fk in enumerate(table.foreign_keys):
        if set(fk.columns) & null_columns or any(c in names for c in fk.columns):
            continue
        alias = f"f{n}"
        nullable = not _required(table, fk)
        unique = set(fk.columns) <= unique_columns
        # The first FK that is (part of) a unique key walks the parents in order, so that
        # one-to-one children do not collide; other FKs pick parents pseudo-randomly, the
        # same parent for a row that repeats the one before it.
        walk = not walked and unique
        walked = walked or walk
        step = 1 if walk else 104729 + n * 7919
        joins.append(
            sql.SQL(
                "{kind} ({parents}) AS {alias}"
                " ON {alias}.rn = 1 + (({g} * {step} + {offset}) % ({count}))"
            ).format(
                kind=sql.SQL("LEFT JOIN" if nullable else "JOIN"),
                parents=_numbered_parents(fk),
                alias=ident(alias),
                g=sql.SQL("g") if unique else REPEATED_G,
                step=sql.Literal(step),
                offset=sql.Literal(seed * 31 + n),
                count=_parent_count(fk),
            )
        )
        null_when = _null_when(nullable_seen) if nullable else None
        nullable_seen += nullable
        for i, column in enumerate(fk.columns):
            value: sql.Composable = column_of(alias, f"v{i}")
            if null_when is not None:
                value = sql.SQL("CASE WHEN {} THEN NULL ELSE {} END").format(null_when, value)
            values.append(value)
            names.append(column)
    return joins, values, names


def _null_when(n: int) -> sql.Composable:
    """When the ``n``-th nullable foreign key of a table is NULL: one row in three, on a
    base-3 digit of the row number of its own, so that NULL and non-NULL meet in every
    combination across the table's nullable foreign keys (one both NULL, one neither...)."""
    digit, value = n % NULL_DIGITS, (n // NULL_DIGITS) % 3
    return sql.SQL("({} / {}) % 3 = {}").format(
        REPEATED_G, sql.Literal(3**digit), sql.Literal(value)
    )


def _numbered_parents(fk: ForeignKey) -> sql.Composed:
    """The parent rows a foreign key can point at, numbered ``rn`` from 1 in key order."""
    return sql.SQL(
        "SELECT {values}, row_number() OVER (ORDER BY {order}) AS rn FROM {parent} WHERE {not_null}"
    ).format(
        values=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(ident(c), ident(f"v{i}"))
            for i, c in enumerate(fk.ref_columns)
        ),
        order=idents(fk.ref_columns),
        parent=qualified(fk.ref_table, fk.ref_schema),
        not_null=_parent_key_not_null(fk),
    )


def _parent_count(fk: ForeignKey) -> sql.Composed:
    """How many parent rows ``_numbered_parents`` numbers; NULL when none (no match then).

    A scalar subquery, not a window count beside ``rn``: the join condition
    ``rn = 1 + (... % count)`` then reads the parent's side only through ``rn``, so that
    PostgreSQL hashes it instead of testing every candidate against every parent row.
    """
    return sql.SQL("SELECT nullif(count(*), 0) FROM {parent} WHERE {not_null}").format(
        parent=qualified(fk.ref_table, fk.ref_schema), not_null=_parent_key_not_null(fk)
    )


def _parent_key_not_null(fk: ForeignKey) -> sql.Composed:
    return sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(ident(c)) for c in fk.ref_columns)


def _fill_deferred(
    conn: Connection, schema: str, table: TableInfo, fk: ForeignKey, seed: int
) -> str:
    """Point two rows in three at parents; rows whose checks would then fail keep NULL."""
    order = (
        sql.SQL(", ").join(column_of("t", c) for c in table.key)
        if table.key
        else sql.SQL("t::text")
    )
    unique = set(fk.columns) <= {c for u in table.unique_sets for c in u}
    statement = sql.SQL(
        "WITH c AS (SELECT t.ctid AS tid, row_number() OVER (ORDER BY {order}) AS rn"
        "           FROM {table} AS t),"
        " p AS ({parents})"
        " UPDATE {table} AS t SET ({columns}) = ROW({values})"
        " FROM c JOIN p ON p.rn = 1 + ((c.rn * {step} + {offset}) % ({count}))"
        " WHERE t.ctid = c.tid AND c.rn % 3 <> 0 AND {checks}"
    ).format(
        order=order,
        table=qualified(table.name, schema),
        parents=_numbered_parents(fk),
        count=_parent_count(fk),
        columns=idents(fk.columns),
        values=sql.SQL(", ").join(column_of("p", f"v{i}") for i in range(len(fk.columns))),
        step=sql.Literal(1 if unique else 7919),
        offset=sql.Literal(0 if unique else seed),
        checks=_checks_after_update(table, fk),
    )
    _, error = _attempt(conn, statement)
    return f"could not fill {fk.name}: {error}" if error else ""


def _checks_after_update(table: TableInfo, fk: ForeignKey) -> sql.Composable:
    """The checks reading ``fk``'s columns, evaluated on the row as the update leaves it."""
    checks = [c for c in table.checks if set(c.columns) & set(fk.columns)]
    if not checks:
        return sql.SQL("true")
    columns = sorted({c for check in checks for c in check.columns})
    row = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(
            column_of("p", f"v{fk.columns.index(c)}") if c in fk.columns else column_of("t", c),
            ident(c),
        )
        for c in columns
    )
    return sql.SQL("EXISTS (SELECT FROM (SELECT {}) AS x WHERE {})").format(
        row,
        sql.SQL(" AND ").join(
            sql.SQL("({}) IS NOT FALSE").format(sql.SQL(c.expression)) for c in checks
        ),
    )


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
