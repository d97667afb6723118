"""Name the rows that differ: keep a copy of each row inside the database, compare later.

A snapshot says *that* a table's data changed; this module says *which* rows and columns.
``capture_rows`` stores every row of every table (as ``to_jsonb``) in side tables of the
schema ``lossless_verify`` of the same database (snapshots never look there).
``compare_rows`` then counts, inside PostgreSQL:

- rows of the first capture with no identical row in the second (a multiset difference over
  row fingerprints: independent of keys, so it also works when keys are regenerated);
- by key (primary key, else a NOT NULL unique key): rows that vanished, appeared or changed,
  and for changed rows which columns changed, with a few sample keys and values.

Only counts and a handful of samples reach Python.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from psycopg import sql
from sqlalchemy import Connection

from toolkit.sql.idents import ident, literal, qualified
from toolkit.sql.run import execute
from toolkit.verify.session import canonical_settings
from toolkit.verify.snapshot import DEFAULT_EXCLUDED_TABLES
from toolkit.verify.structure import read_row_keys

SIDE_SCHEMA = "lossless_verify"
SAMPLE_TEXT_LIMIT = 120


@dataclass(frozen=True)
class CapturedTable:
    """One table's rows, stored in ``SIDE_SCHEMA.store``."""

    name: str
    store: str
    key_columns: tuple[str, ...]
    rows: int


@dataclass(frozen=True)
class RowCapture:
    """A copy of every row of a schema, kept in the database under ``label``."""

    label: str
    schema: str
    tables: tuple[CapturedTable, ...]

    def table(self, name: str) -> CapturedTable | None:
        """The captured table called ``name``, if any."""
        return next((t for t in self.tables if t.name == name), None)


@dataclass(frozen=True)
class ValueChange:
    """One sample of a changed value: the row's key, the value before and after (as JSON)."""

    key: str
    before: str
    after: str


@dataclass(frozen=True)
class ColumnChange:
    """A column whose value changed in ``rows`` rows (matched by key)."""

    column: str
    rows: int
    samples: tuple[ValueChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "column": self.column,
            "rows": self.rows,
            "samples": [{"key": s.key, "before": s.before, "after": s.after} for s in self.samples],
        }


@dataclass(frozen=True)
class RowChanges:
    """How one table's rows differ between two captures.

    ``not_restored``: rows of the first capture with no identical row in the second (the
    number that a round trip calls lost); ``unexpected``: the converse. ``vanished``,
    ``appeared`` and ``changed`` match rows by ``key_columns`` and are ``None`` when the
    table has no usable key.
    """

    table: str
    key_columns: tuple[str, ...]
    rows_before: int
    rows_after: int
    not_restored: int
    unexpected: int
    vanished: int | None = None
    appeared: int | None = None
    changed: int | None = None
    columns: tuple[ColumnChange, ...] = ()
    samples: tuple[str, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.not_restored == 0 and self.unexpected == 0

    def describe(self) -> list[str]:
        """Lines for a report: counts, columns and sample keys."""
        if self.ok:
            return [f"{self.table}: {self.rows_before} rows, all identical"]
        head = (
            f"{self.table}: {self.not_restored} of {self.rows_before} rows did not come back "
            f"unchanged, {self.unexpected} rows are new or changed ({self.rows_after} rows after)"
        )
        if self.note:
            head += f"; {self.note}"
        lines = [head]
        if self.vanished is not None:
            lines.append(
                f"  by key ({', '.join(self.key_columns)}): {self.vanished} vanished, "
                f"{self.appeared} appeared, {self.changed} changed"
            )
        for col in self.columns:
            lines.append(f"  column {self.table}.{col.column}: {col.rows} row(s) changed")
            lines += [f"    {s.key}: {s.before} -> {s.after}" for s in col.samples]
        if self.samples:
            lines.append(f"  e.g. {'; '.join(self.samples)}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "table": self.table,
            "key_columns": list(self.key_columns),
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "not_restored": self.not_restored,
            "unexpected": self.unexpected,
            "vanished": self.vanished,
            "appeared": self.appeared,
            "changed": self.changed,
            "columns": [c.to_json() for c in self.columns],
            "samples": list(self.samples),
            "note": self.note,
        }


def capture_rows(
    conn: Connection,
    label: str,
    *,
    schema: str = "public",
    exclude_tables: Sequence[str] = DEFAULT_EXCLUDED_TABLES,
) -> RowCapture:
    """Copy every row of every table of ``schema`` into ``SIDE_SCHEMA`` under ``label``.

    A capture with the same label is replaced. Meant for scratch databases: it doubles
    the data.
    """
    execute(conn, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(SIDE_SCHEMA)))
    captured = []
    with canonical_settings(conn):
        keys = read_row_keys(conn, schema)
        tables = [t for t in keys if t not in exclude_tables]
        for n, table in enumerate(tables):
            store = f"{label}_{n}"
            target = qualified(store, SIDE_SCHEMA)
            execute(conn, sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            execute(
                conn,
                sql.SQL("CREATE TABLE {} AS SELECT to_jsonb(t) AS r FROM {} AS t").format(
                    target, qualified(table, schema)
                ),
            )
            count = execute(conn, sql.SQL("SELECT count(*) FROM {}").format(target)).scalar_one()
            captured.append(CapturedTable(table, store, keys[table], int(count)))
    return RowCapture(label=label, schema=schema, tables=tuple(captured))


def drop_capture(conn: Connection, capture: RowCapture) -> None:
    """Remove a capture's side tables."""
    for table in capture.tables:
        execute(
            conn, sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(table.store, SIDE_SCHEMA))
        )


def compare_rows(
    conn: Connection,
    before: RowCapture,
    after: RowCapture,
    *,
    exclude_columns: Mapping[str, Sequence[str]] | None = None,
    tables: Collection[str] | None = None,
    samples: int = 3,
) -> tuple[RowChanges, ...]:
    """Per table (of either capture, sorted): how the rows of ``after`` differ from ``before``.

    ``exclude_columns`` (table -> columns) leaves volatile columns out of the comparison;
    ``tables`` limits the comparison to those tables.
    """
    excluded = {t: sorted(set(c)) for t, c in (exclude_columns or {}).items()}
    names = sorted({t.name for t in before.tables} | {t.name for t in after.tables})
    if tables is not None:
        names = [n for n in names if n in tables]
    found = []
    for name in names:
        old, new = before.table(name), after.table(name)
        if old is None or new is None:
            found.append(_one_sided(name, old, new))
        else:
            found.append(_compare_table(conn, old, new, excluded.get(name, []), samples))
    return tuple(found)


def _one_sided(name: str, old: CapturedTable | None, new: CapturedTable | None) -> RowChanges:
    rows_before = old.rows if old else 0
    rows_after = new.rows if new else 0
    present = old or new
    return RowChanges(
        table=name,
        key_columns=present.key_columns if present else (),
        rows_before=rows_before,
        rows_after=rows_after,
        not_restored=rows_before,
        unexpected=rows_after,
        note="table missing" if new is None else "table added",
    )


def _stored_rows(table: CapturedTable, excluded: list[str]) -> sql.Composed:
    # jsonb text is canonical (keys sorted), so equal text means equal rows.
    return sql.SQL("SELECT (r - {}::text[])::text AS r FROM {}").format(
        sql.Literal(excluded), qualified(table.store, SIDE_SCHEMA)
    )


def _compare_table(
    conn: Connection, old: CapturedTable, new: CapturedTable, excluded: list[str], samples: int
) -> RowChanges:
    multiset = sql.SQL(
        "WITH b AS ({old}), a AS ({new}),"
        " lost AS (SELECT r FROM b EXCEPT ALL SELECT r FROM a),"
        " extra AS (SELECT r FROM a EXCEPT ALL SELECT r FROM b)"
        " SELECT (SELECT count(*) FROM lost), (SELECT count(*) FROM extra),"
        " ARRAY(SELECT left(r, {limit}) FROM lost ORDER BY r LIMIT {samples})"
    ).format(
        old=_stored_rows(old, excluded),
        new=_stored_rows(new, excluded),
        limit=sql.Literal(SAMPLE_TEXT_LIMIT),
        samples=sql.Literal(samples),
    )
    not_restored, unexpected, lost_rows = execute(conn, multiset).one()
    base = RowChanges(
        table=old.name,
        key_columns=old.key_columns,
        rows_before=old.rows,
        rows_after=new.rows,
        not_restored=int(not_restored),
        unexpected=int(unexpected),
    )
    if base.ok:
        return base
    keyed = bool(old.key_columns) and old.key_columns == new.key_columns
    if not keyed or set(old.key_columns) & set(excluded):
        return replace(base, samples=tuple(lost_rows))
    return _by_key(conn, base, old, new, excluded, samples)


def _by_key(
    conn: Connection,
    base: RowChanges,
    old: CapturedTable,
    new: CapturedTable,
    excluded: list[str],
    samples: int,
) -> RowChanges:
    key = sql.SQL("jsonb_build_array({})").format(
        sql.SQL(", ").join(sql.SQL("r -> {}").format(literal(c)) for c in old.key_columns)
    )
    pairs = sql.SQL(
        "WITH b AS (SELECT {key} AS k, r - {excluded}::text[] AS r FROM {old}),"
        " a AS (SELECT {key} AS k, r - {excluded}::text[] AS r FROM {new}),"
        " pairs AS (SELECT coalesce(b.k, a.k) AS k, b.r AS br, a.r AS ar"
        "           FROM b FULL JOIN a ON a.k = b.k)"
    ).format(
        key=key,
        excluded=sql.Literal(excluded),
        old=qualified(old.store, SIDE_SCHEMA),
        new=qualified(new.store, SIDE_SCHEMA),
    )
    limit = sql.Literal(samples)
    counts = sql.SQL(
        "{pairs} SELECT count(*) FILTER (WHERE ar IS NULL), count(*) FILTER (WHERE br IS NULL),"
        " count(*) FILTER (WHERE br::text <> ar::text),"
        " ARRAY(SELECT k::text FROM pairs WHERE ar IS NULL OR br IS NULL OR br::text <> ar::text"
        "       ORDER BY pairs.k LIMIT {limit})"
        " FROM pairs"
    ).format(pairs=pairs, limit=limit)
    vanished, appeared, changed, keys = execute(conn, counts).one()
    columns = sql.SQL(
        "{pairs}, changed AS (SELECT k, br, ar FROM pairs WHERE br::text <> ar::text)"
        " SELECT col, count(*),"
        " (array_agg(jsonb_build_array(k::text, {shown_b}, {shown_a}) ORDER BY k))"
        "   [1:{limit}]"
        " FROM changed CROSS JOIN LATERAL"
        "   (SELECT jsonb_object_keys(br) UNION SELECT jsonb_object_keys(ar)) AS c(col)"
        " WHERE (br -> col)::text IS DISTINCT FROM (ar -> col)::text"
        " GROUP BY col ORDER BY col"
    ).format(pairs=pairs, shown_b=_shown("br"), shown_a=_shown("ar"), limit=limit)
    column_changes = tuple(
        ColumnChange(
            column=col,
            rows=int(count),
            samples=tuple(
                ValueChange(_key_text(old.key_columns, k), _clip(b), _clip(a)) for k, b, a in shown
            ),
        )
        for col, count, shown in execute(conn, columns)
    )
    return replace(
        base,
        vanished=int(vanished),
        appeared=int(appeared),
        changed=int(changed),
        columns=column_changes,
        samples=tuple(_key_text(old.key_columns, k) for k in keys),
    )


def _shown(side: str) -> sql.Composed:
    # A column absent from one side (dropped, not re-added) shows as such, not as null.
    return sql.SQL(
        "CASE WHEN {side} ? col THEN ({side} -> col)::text ELSE '(no such column)' END"
    ).format(side=ident(side))


def _key_text(columns: Sequence[str], key: str) -> str:
    values = json.loads(key)
    shown = ", ".join(f"{c}={_value_text(v)}" for c, v in zip(columns, values, strict=False))
    return shown if len(columns) == 1 else f"({shown})"


def _value_text(value: object) -> str:
    return value if isinstance(value, str) else ("NULL" if value is None else str(value))


def _clip(text: str) -> str:
    return text if len(text) <= SAMPLE_TEXT_LIMIT else text[: SAMPLE_TEXT_LIMIT - 3] + "..."
