"""Data a migration step drops, measured from snapshots rather than taken from the operations.

Preflight runs a step inside a transaction that is rolled back. Two snapshots taken in that
transaction (before and after the step) tell which tables and columns the step dropped and
which tables lost rows; the data they held is counted on the state before the step (the
caller rolls back to a savepoint first). Every revision is judged this way, not only the
toolkit's operations: a table or column an operation reported on is left to the
operation's own counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from psycopg import sql
from sqlalchemy import Connection

from toolkit.ops.results import OpResult
from toolkit.sql.idents import ident, qualified
from toolkit.sql.run import execute
from toolkit.verify import Snapshot, SnapshotDiff, diff, take_snapshot


@dataclass(frozen=True)
class DroppedData:
    """Rows (of a dropped table, or deleted) or values (of a dropped column) a step removes."""

    kind: Literal["table", "column", "rows"]
    table: str
    rows: int
    column: str | None = None

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    def describe(self) -> str:
        """One line, e.g. ``table tags dropped with 200 rows``."""
        unit = "row" if self.rows == 1 else "rows"
        if self.kind == "table":
            return f"table {self.table} dropped with {self.rows:,} {unit}"
        if self.kind == "column":
            return f"column {self.where} dropped with a value in {self.rows:,} {unit}"
        return f"{self.rows:,} {unit} deleted from {self.table}"


@dataclass(frozen=True)
class DropCandidates:
    """What a step removed, before its data is counted."""

    tables: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    deleted: tuple[tuple[str, int], ...]


def drop_candidates(
    before: Snapshot, after: Snapshot, operations: Iterable[OpResult] = ()
) -> DropCandidates:
    """Tables and columns of ``before`` missing from ``after``, and tables with fewer rows.

    A table whose exact data reappears under another name is a rename, not a drop. Tables
    and columns an operation reported on are left out (its counts say what happened).
    """
    reported = {(r.loss_table, r.column) for r in operations}
    reported_tables = {t for t, _ in reported}
    found: SnapshotDiff = diff(before, after)
    missing = [
        d.name for d in found.schema_differences if d.kind == "table" and d.change == "missing"
    ]
    renamed = {
        t.name
        for t in (before.table(n) for n in missing)
        if t is not None
        and any(
            a.rows == t.rows and a.fingerprint == t.fingerprint
            for a in after.tables
            if before.table(a.name) is None
        )
    }
    tables = tuple(n for n in missing if n not in renamed and n not in reported_tables)
    columns = tuple(
        (d.table, d.name)
        for d in found.schema_differences
        if d.kind == "column"
        and d.change == "missing"
        and d.table is not None
        and d.table not in missing
        and (d.table, d.name) not in reported
        and (d.table, None) not in reported
    )
    deleted = tuple(
        (t.name, t.rows - kept.rows)
        for t in before.tables
        if (kept := after.table(t.name)) is not None
        and kept.rows < t.rows
        and t.name not in reported_tables
    )
    return DropCandidates(tables=tables, columns=columns, deleted=deleted)


def count_dropped(
    conn: Connection, before: Snapshot, candidates: DropCandidates, schema: str = "public"
) -> list[DroppedData]:
    """The data behind ``candidates``, counted on ``conn`` in the state of ``before``."""
    found = [
        DroppedData("table", t.name, t.rows)
        for t in before.tables
        if t.name in candidates.tables and t.rows
    ]
    for table, column in candidates.columns:
        query = sql.SQL("SELECT count({}) FROM {}").format(ident(column), qualified(table, schema))
        values = int(execute(conn, query).scalar_one())
        if values:
            found.append(DroppedData("column", table, values, column))
    found += [DroppedData("rows", t, n) for t, n in candidates.deleted]
    return found


SAVEPOINT = "lossless_before_step"


def mark_start(conn: Connection, exclude_tables: Iterable[str]) -> Snapshot:
    """Snapshot the state before a step, inside the caller's transaction, and set a
    savepoint to come back to it (``measure_dropped``)."""
    before = take_snapshot(conn, exclude_tables=tuple(exclude_tables))
    execute(conn, sql.SQL("SAVEPOINT {}").format(ident(SAVEPOINT)))
    return before


def measure_dropped(
    conn: Connection,
    before: Snapshot,
    operations: Iterable[OpResult],
    exclude_tables: Iterable[str],
) -> list[DroppedData]:
    """After a step that succeeded: what it dropped, counted back at the savepoint."""
    after = take_snapshot(conn, exclude_tables=tuple(exclude_tables))
    candidates = drop_candidates(before, after, operations)
    execute(conn, sql.SQL("ROLLBACK TO SAVEPOINT {}").format(ident(SAVEPOINT)))
    return count_dropped(conn, before, candidates)


def rollback_differences(
    conn: Connection, before: Snapshot, exclude_tables: Iterable[str]
) -> list[str]:
    """After the rollback: how the database differs from ``before`` (empty: unchanged)."""
    now = take_snapshot(conn, exclude_tables=tuple(exclude_tables))
    return [d.describe() for d in diff(before, now).differences]
