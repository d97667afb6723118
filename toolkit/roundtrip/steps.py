"""Building blocks shared by the scenario and the project round trips.

Timed migrations whose failures become report entries, "states" (a snapshot plus a row
capture) and the comparison of two states, invariants and counting queries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from psycopg import sql
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from toolkit import migrate
from toolkit.errors import ProvisioningError, ToolkitError
from toolkit.guard import ForeignDatabaseError
from toolkit.migrate import Position, Project
from toolkit.ops.results import OpResult
from toolkit.postgres.url import mask_url, scrub
from toolkit.project_code import ProjectCodeError
from toolkit.roundtrip.report import InvariantResult
from toolkit.roundtrip.touched import recording_statements
from toolkit.scenario import Invariant
from toolkit.sql.run import execute
from toolkit.verify import (
    DEFAULT_EXCLUDED_TABLES,
    RowCapture,
    RowChanges,
    Snapshot,
    SnapshotDiff,
    capture_rows,
    compare_rows,
    diff,
    take_snapshot,
)

SAMPLES = 3


@dataclass(frozen=True)
class Migration:
    """The outcome of one Alembic run: the operations' reports, time, error if any, and
    the statements it sent (to tell which tables it changed)."""

    ops: tuple[OpResult, ...]
    seconds: float
    error: str | None = None
    statements: tuple[str, ...] = ()


def run_migration(
    direction: Literal["upgrade", "downgrade"],
    project: Project,
    url: str,
    revision: str,
    x: Mapping[str, str] | None = None,
) -> Migration:
    """Run Alembic (with the ``-x`` options ``x``); any failure of the migration itself
    is returned, not raised.

    Set-up problems propagate, since no step can run: the server went away
    (``ProvisioningError``), env.py aimed at another database (``ForeignDatabaseError``),
    env.py itself raised (``ProjectCodeError`` with exit code 2).
    """
    started = time.perf_counter()
    run = migrate.upgrade if direction == "upgrade" else migrate.downgrade
    error: str | None
    with recording_statements() as statements:
        try:
            ops = run(project, url, revision, x=x)
        except (ProvisioningError, ForeignDatabaseError):
            raise
        except ProjectCodeError as exc:
            if exc.exit_code != 1:
                raise
            error = str(exc)
        except Exception as exc:
            error = describe_error(exc, url)
        else:
            error = None
    seconds = time.perf_counter() - started
    if error is not None:
        return Migration((), seconds, error, tuple(statements))
    return Migration(tuple(ops), seconds, None, tuple(statements))


def version_mismatch(at: Position, step: str, expected: Sequence[str]) -> str | None:
    """Why the version table does not say what ``step`` should have reached, if it does not."""
    if set(at.heads) == set(expected):
        return None
    table = f"{at.table.schema}.{at.table.name}" if at.table.schema else at.table.name
    said = ", ".join(at.heads) or "base (no row)"
    return (
        f"after the {step}, the version table {table} says {said}, "
        f"expected {', '.join(expected) or 'base (no row)'}"
    )


def untested_tables(start: Snapshot, changed: set[str]) -> tuple[set[str], list[str]]:
    """Of the tables a step changed, those that existed at its start, and the reasons the
    step is untested: each such table that had no row."""
    rows = {t.name: t.rows for t in start.tables}
    existing = {t for t in changed if t in rows}
    reasons = [f"{t} had no rows" for t in sorted(existing) if rows[t] == 0]
    return existing, reasons


def describe_error(exc: BaseException, url: str | None = None) -> str:
    """One line for a report: the database's message, or the exception's; no password."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = str(exc.orig).strip().splitlines()[0]
    elif isinstance(exc, ToolkitError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text, url) if url else text


@dataclass(frozen=True)
class State:
    """A database state: its snapshot and, when kept, a copy of its rows (under ``label``)."""

    label: str
    snapshot: Snapshot
    rows: RowCapture | None = None
    excluded_tables: tuple[str, ...] = DEFAULT_EXCLUDED_TABLES


def capture_state(
    conn: Connection,
    label: str,
    *,
    exclude_columns: Mapping[str, Sequence[str]] | None = None,
    keep_rows: bool = True,
    exclude_tables: Sequence[str] = DEFAULT_EXCLUDED_TABLES,
) -> State:
    """Snapshot the ``public`` schema; with ``keep_rows``, also copy its rows aside.

    A state compared later as the "before" side needs its rows; an "after" side can go
    without: ``compare_states`` copies them only if the snapshots differ. Tables in
    ``exclude_tables`` (the version table) are left out.
    """
    return State(
        label=label,
        snapshot=take_snapshot(
            conn, exclude_columns=exclude_columns, exclude_tables=exclude_tables
        ),
        rows=capture_rows(conn, label, exclude_tables=exclude_tables) if keep_rows else None,
        excluded_tables=tuple(exclude_tables),
    )


@dataclass(frozen=True)
class Comparison:
    """Two states compared: the snapshot diff and, where data differ, the rows behind it."""

    diff: SnapshotDiff
    rows: tuple[RowChanges, ...]

    @property
    def ok(self) -> bool:
        return self.diff.ok


def compare_states(
    conn: Connection,
    before: State,
    after: State,
    *,
    exclude_columns: Mapping[str, Sequence[str]] | None = None,
    all_tables: bool = False,
) -> Comparison:
    """Diff the snapshots; name the differing rows of tables whose data differ.

    Call it while the database is still in the ``after`` state. ``all_tables`` compares
    the rows of every table, not only those the snapshots flag.
    """
    found = diff(before.snapshot, after.snapshot)
    tables = None if all_tables else found.tables()
    rows: tuple[RowChanges, ...] = ()
    if all_tables or tables:
        if before.rows is None:
            raise ValueError(f"state {before.label} kept no rows to compare with")
        after_rows = after.rows or capture_rows(
            conn, after.label, exclude_tables=after.excluded_tables
        )
        rows = compare_rows(
            conn,
            before.rows,
            after_rows,
            exclude_columns=exclude_columns,
            tables=tables,
            samples=SAMPLES,
        )
        rows = tuple(
            _name_renumbered_keys(conn, before.rows, after_rows, r, exclude_columns) for r in rows
        )
    return Comparison(found, rows)


def _name_renumbered_keys(
    conn: Connection,
    before: RowCapture,
    after: RowCapture,
    changes: RowChanges,
    exclude_columns: Mapping[str, Sequence[str]] | None,
) -> RowChanges:
    """Say "primary keys not preserved" when rows came back whole but under other keys."""
    if changes.ok or not changes.key_columns or changes.not_restored == 0:
        return changes
    excluded = {**(exclude_columns or {})}
    excluded[changes.table] = (*excluded.get(changes.table, ()), *changes.key_columns)
    (without_keys,) = compare_rows(
        conn, before, after, exclude_columns=excluded, tables=[changes.table], samples=0
    )
    renumbered = changes.not_restored - without_keys.not_restored
    if renumbered <= 0:
        return changes
    keys = ", ".join(changes.key_columns)
    note = (
        f"primary keys not preserved: {renumbered} of {changes.rows_before} "
        f"{_rows(changes.rows_before)} came back with other {keys} values"
    )
    return replace(changes, note=f"{changes.note}; {note}" if changes.note else note)


def _rows(count: int) -> str:
    return "row" if count == 1 else "rows"


def check_invariants(conn: Connection, invariants: Sequence[Invariant]) -> list[InvariantResult]:
    """Run each invariant's query: the number of rows it returns and the first few keys."""
    results = []
    for invariant in invariants:
        query = sql.SQL(invariant.sql.strip().rstrip(";"))
        count = execute(conn, sql.SQL("SELECT count(*) FROM ({}) AS v").format(query)).scalar_one()
        samples: tuple[str, ...] = ()
        if count:
            limited = sql.SQL("SELECT * FROM ({}) AS v LIMIT {}").format(
                query, sql.Literal(SAMPLES)
            )
            samples = tuple(str(row[0]) for row in execute(conn, limited))
        results.append(InvariantResult(invariant.name, int(count), samples))
    return results


def run_sql_count(conn: Connection, query: str) -> int:
    """A declaration's counting query (e.g. ``DeclaredLoss.expected_sql``): one integer."""
    value = execute(conn, sql.SQL(query.strip().rstrip(";"))).scalar()
    return int(value or 0)


def server_label(server_url: str, conn: Connection) -> str:
    """``PostgreSQL 15.4 at postgresql://user:***@host/db`` (no password)."""
    version = conn.exec_driver_sql("SHOW server_version").scalar_one()
    return f"PostgreSQL {str(version).split()[0]} at {mask_url(server_url)}"


def comparison_problems(comparison: Comparison) -> list[str]:
    """Sentences for a report: each schema difference, each table whose rows differ."""
    problems = [d.describe() for d in comparison.diff.schema_differences]
    described = {r.table for r in comparison.rows if not r.ok}
    problems += [row_summary(r) for r in comparison.rows if not r.ok]
    problems += [d.describe() for d in comparison.diff.data_differences if d.table not in described]
    return problems


def row_summary(changes: RowChanges) -> str:
    """One sentence: rows not restored, vanished, appeared, changed columns, sample keys."""
    parts = [
        f"{changes.table}: {changes.not_restored} of {changes.rows_before} "
        f"{_rows(changes.rows_before)} did not come back unchanged"
    ]
    if changes.note:
        parts.append(changes.note)
    if changes.vanished:
        parts.append(f"{changes.vanished} vanished")
    if changes.appeared:
        parts.append(f"{changes.appeared} appeared")
    parts += [
        f"column {changes.table}.{c.column} changed in {c.rows} row(s)" for c in changes.columns
    ]
    if changes.samples:
        parts.append(f"e.g. {'; '.join(changes.samples)}")
    return ", ".join(parts)
