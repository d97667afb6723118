"""Proofs: snapshots to files, diffs of two files, and scenario or project round trips.

``roundtrip`` never touches the database the URL names: the round-trip functions work in a
scratch database on the same server and drop it afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toolkit.commands.server import (
    Progress,
    ServerInfo,
    open_connection,
    open_server,
    silent,
)
from toolkit.commands.settings import RunSettings, resolve_target
from toolkit.errors import UsageError
from toolkit.postgres.url import database_name
from toolkit.roundtrip import RoundTripReport, run_project_roundtrip, run_scenario_roundtrip
from toolkit.verify import Snapshot, SnapshotDiff, diff, take_snapshot


@dataclass(frozen=True)
class SnapshotWritten:
    """Where a snapshot went and what it covers."""

    server: ServerInfo
    database: str
    path: Path
    tables: int
    rows: int


def snapshot(
    settings: RunSettings, output: Path, *, progress: Progress = silent
) -> SnapshotWritten:
    """Snapshot the database (schema + data fingerprints, computed in PostgreSQL) to ``output``.

    Taken in one read-only repeatable-read transaction, so a live database yields a
    consistent picture across tables.
    """
    with open_server(settings, progress) as server, open_connection(server.url) as conn:
        consistent = conn.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with consistent.begin():
            taken = take_snapshot(consistent)
    try:
        output.write_text(json.dumps(taken.to_json(), indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write snapshot to {output}: {exc.strerror}") from None
    return SnapshotWritten(
        server=ServerInfo.of(server),
        database=database_name(server.url),
        path=output,
        tables=len(taken.tables),
        rows=sum(t.rows for t in taken.tables),
    )


def diff_files(first: Path, second: Path) -> SnapshotDiff:
    """What changed from the snapshot in ``first`` to the one in ``second``."""
    return diff(read_snapshot(first), read_snapshot(second))


def read_snapshot(path: Path) -> Snapshot:
    """A snapshot file written by ``snapshot``; ``UsageError`` for anything else."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read snapshot {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    return Snapshot.from_json(data)


@dataclass(frozen=True)
class RoundTripRun:
    """A round trip's report and the server it ran on."""

    report: RoundTripReport
    server: ServerInfo


def roundtrip(
    settings: RunSettings,
    *,
    rows: int,
    seed: int = 0,
    clone: bool = False,
    keep: bool = False,
    online: bool = False,
    jobs: int | None = None,
    progress: Progress = silent,
) -> RoundTripRun:
    """Prove on a scratch database that downgrade + upgrade lose nothing undeclared.

    ``clone`` starts the scratch database as a copy of the one the URL names (real data);
    ``keep`` leaves the scratch database in place for inspection; ``online`` runs the
    upgrades of a bundled scenario in online mode; ``jobs`` processes share a project's
    steps (default: ``toolkit.roundtrip.parallel.default_jobs``).
    """
    if rows < 0 or (rows == 0 and not clone):
        raise UsageError(f"--rows must be at least 1 (0 only with --clone), got {rows}")
    target = resolve_target(settings)
    if online and target.scenario is None:
        raise UsageError("roundtrip --online is for the bundled scenarios so far")
    with open_server(settings, progress) as server:
        named = database_name(server.url)
        template = named if clone else None
        start = f"a copy of {named!r}" if clone else "an empty scratch database"
        progress(
            f"round trip of {target.label} with --rows {rows} --seed {seed}, starting from "
            f"{start} (database {named!r} itself is not changed)"
        )
        if target.scenario is not None:
            report = run_scenario_roundtrip(
                target.scenario,
                server.url,
                rows=rows,
                seed=seed,
                template=template,
                keep=keep,
                online=online,
            )
        else:
            report = run_project_roundtrip(
                target.project,
                server.url,
                rows=rows,
                seed=seed,
                template=template,
                keep=keep,
                jobs=jobs,
            )
    return RoundTripRun(report=report, server=ServerInfo.of(server))
