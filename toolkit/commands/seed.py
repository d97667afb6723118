"""Seed a database with deterministic test data, and say how many rows per second it wrote.

A bundled scenario seeds its pre-refactor schema (an empty database is first upgraded to
the scenario's ``before`` revision); a team's project is seeded by the generic seeder,
which reflects whatever schema the database has (an empty database is first upgraded to
the project's head).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, inspect, select, table

from toolkit import migrate
from toolkit.commands.locked_step import destination, revision_ids
from toolkit.commands.locking import migration_lock
from toolkit.commands.server import (
    Progress,
    ServerInfo,
    open_connection,
    open_server,
    session_url,
    silent,
)
from toolkit.commands.settings import RunSettings, Target, resolve_target
from toolkit.commands.watch import plan, watching
from toolkit.errors import UsageError
from toolkit.postgres.url import database_name
from toolkit.seeding import seed_database
from toolkit.verify import DEFAULT_EXCLUDED_TABLES

#: ``write(conn, rows, seed, excluded)`` fills the database but the ``excluded`` tables;
#: returns notes worth showing.
Writer = Callable[[Connection, int, int, Sequence[str]], tuple[str, ...]]


@dataclass(frozen=True)
class TableRows:
    """Rows a table gained."""

    table: str
    rows: int


@dataclass(frozen=True)
class SeedReport:
    """What ``seed`` wrote, where, and how fast."""

    target: str
    server: ServerInfo
    database: str
    revision: tuple[str, ...]
    rows: int
    seed: int
    #: The revision an empty database was first upgraded to, if it was.
    prepared: str | None
    tables: tuple[TableRows, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def rows_per_second(self) -> float | None:
        return self.total / self.seconds if self.seconds > 0 and self.total else None


def seed(
    settings: RunSettings, *, rows: int, seed: int = 0, progress: Progress = silent
) -> SeedReport:
    """Fill the database with ``rows`` (a scale: rows of the main tables) seeded by ``seed``."""
    if rows < 1:
        raise UsageError(f"--rows must be at least 1, got {rows}")
    target = resolve_target(settings)
    writer = _writer(target)
    with (
        open_server(settings, progress) as server,
        migration_lock(
            server.url, timeout_s=settings.lock_timeout_s, purpose="seed", progress=progress
        ),
    ):
        url = session_url(server.url, settings, purpose="seed")
        upgraded = _prepare(target, migrate.current(target.project, server.url), url, progress)
        at = migrate.current(target.project, server.url)
        prepared = revision_ids(at) if upgraded else None
        progress(
            f"seed {target.label} on database {database_name(server.url)!r} at "
            f"{revision_ids(at)}: --rows {rows} --seed {seed}"
        )
        # The version table env.py configures (its own name, maybe in public) is not data.
        excluded = migrate.position(target.project, server.url).table.excluded_tables()
        with open_connection(url) as conn:
            before = table_rows(conn, excluded=excluded)
            started = time.perf_counter()
            with conn.begin():
                notes = writer(conn, rows, seed, excluded)
            seconds = time.perf_counter() - started
            after = table_rows(conn, excluded=excluded)
    added = tuple(TableRows(name, after[name] - before.get(name, 0)) for name in sorted(after))
    return SeedReport(
        target=target.label,
        server=ServerInfo.of(server),
        database=database_name(server.url),
        revision=at,
        rows=rows,
        seed=seed,
        prepared=prepared,
        tables=added,
        seconds=seconds,
        notes=notes,
    )


def _writer(target: Target) -> Writer:
    scenario = target.scenario
    if scenario is not None:

        def write_scenario(
            conn: Connection, rows: int, seed: int, excluded: Sequence[str]
        ) -> tuple[str, ...]:
            del excluded  # a scenario's seed writes its own tables only
            scenario.seed(conn, rows, seed)
            return ()

        return write_scenario

    def write_reflected(
        conn: Connection, rows: int, seed: int, excluded: Sequence[str]
    ) -> tuple[str, ...]:
        return seed_database(conn, rows=rows, seed=seed, exclude_tables=excluded).notes

    return write_reflected


def _prepare(target: Target, at: tuple[str, ...], url: str, progress: Progress) -> bool:
    """Upgrade an empty database to the revision the seeder fills (True); check the others."""
    scenario = target.scenario
    start = scenario.before if scenario is not None else "heads"
    if scenario is not None and at and at != (start,):
        raise UsageError(
            f"{scenario.name} seeds the schema of revision {start} (before the "
            f"refactor) but the database is at {revision_ids(at)}: downgrade to "
            f"{start} first, or seed an empty database"
        )
    if at:
        return False
    progress(f"empty database: upgrading to {destination(target.project, start)} first")
    steps = plan(target.project, "upgrade", start, at)
    with open_connection(url) as conn, watching(progress, steps, conn):
        migrate.upgrade(target.project, url, start, connection=conn)
    return True


def table_rows(
    conn: Connection,
    *,
    schema: str | None = None,
    excluded: Sequence[str] = DEFAULT_EXCLUDED_TABLES,
) -> dict[str, int]:
    """``{table: count(*)}`` for every table of ``schema`` (default: the search path's first)
    but the ``excluded`` ones (the version table, the toolkit's own)."""
    names = [n for n in inspect(conn).get_table_names(schema=schema) if n not in excluded]
    counts: dict[str, int] = {}
    for name in names:
        query = select(func.count()).select_from(table(name, schema=schema))
        counts[name] = int(conn.execute(query).scalar_one())
    if conn.in_transaction():
        conn.commit()
    return counts
