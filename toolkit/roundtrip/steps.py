"""Building blocks shared by the scenario and the project round trips.

Timed migrations whose failures become report entries, "states" (a snapshot plus a row
capture) and the comparison of two states, invariants and counting queries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from psycopg import sql
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from toolkit import migrate
from toolkit.errors import ProvisioningError, ToolkitError
from toolkit.migrate import Project
from toolkit.ops.results import OpResult
from toolkit.postgres.url import mask_url, scrub
from toolkit.roundtrip.report import InvariantResult
from toolkit.scenario import Invariant
from toolkit.verify import (
    RowCapture,
    RowChanges,
    Snapshot,
    SnapshotDiff,
    capture_rows,
    compare_rows,
    diff,
    take_snapshot,
)
from toolkit.verify.compose import execute

SAMPLES = 3


@dataclass(frozen=True)
class Migration:
    """The outcome of one Alembic run: the operations' reports, time, error if any."""

    ops: tuple[OpResult, ...]
    seconds: float
    error: str | None = None


def run_migration(
    direction: Literal["upgrade", "downgrade"], project: Project, url: str, revision: str
) -> Migration:
    """Run Alembic; any failure of the migration itself is returned, not raised.

    A ``ProvisioningError`` (the server went away) still propagates: no report can be made.
    """
    started = time.perf_counter()
    run = migrate.upgrade if direction == "upgrade" else migrate.downgrade
    try:
        ops = run(project, url, revision)
    except ProvisioningError:
        raise
    except Exception as exc:
        return Migration((), time.perf_counter() - started, describe_error(exc, url))
    return Migration(tuple(ops), time.perf_counter() - started)


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


def capture_state(
    conn: Connection,
    label: str,
    *,
    exclude_columns: Mapping[str, Sequence[str]] | None = None,
    keep_rows: bool = True,
) -> State:
    """Snapshot the ``public`` schema; with ``keep_rows``, also copy its rows aside.

    A state compared later as the "before" side needs its rows; an "after" side can go
    without: ``compare_states`` copies them only if the snapshots differ.
    """
    return State(
        label=label,
        snapshot=take_snapshot(conn, exclude_columns=exclude_columns),
        rows=capture_rows(conn, label) if keep_rows else None,
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
        rows = compare_rows(
            conn,
            before.rows,
            after.rows or capture_rows(conn, after.label),
            exclude_columns=exclude_columns,
            tables=tables,
            samples=SAMPLES,
        )
    return Comparison(found, rows)


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
        f"{changes.table}: {changes.not_restored} of {changes.rows_before} row(s) did not "
        "come back unchanged"
    ]
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
