"""Orchestration behind the ``lossless`` CLI: one function per command, returning data.

Each function provisions the server, takes the migration lock where it changes the
database, runs the library (``toolkit.migrate``, ``toolkit.verify``, ``toolkit.roundtrip``)
and returns a result object; it prints nothing (progress lines go to a callback).
"""

from __future__ import annotations

from toolkit.commands.migrating import (
    CurrentReport,
    HistoryReport,
    MigrationReport,
    current,
    downgrade,
    history,
    offline_sql,
    revision_ids,
    upgrade,
)
from toolkit.commands.preflight import PreflightReport, Refusal, preflight
from toolkit.commands.revision_options import describe_x, explain_refusal, with_x
from toolkit.commands.seed import SeedReport, TableRows, seed
from toolkit.commands.server import Progress, ServerInfo, silent
from toolkit.commands.settings import (
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_STATEMENT_TIMEOUT_S,
    RunSettings,
    ScenarioInfo,
    Target,
    list_scenarios,
    resolve_target,
)
from toolkit.commands.verifying import (
    RoundTripRun,
    SnapshotWritten,
    diff_files,
    roundtrip,
    snapshot,
)
from toolkit.commands.watch import TimedResult

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "DEFAULT_STATEMENT_TIMEOUT_S",
    "CurrentReport",
    "HistoryReport",
    "MigrationReport",
    "PreflightReport",
    "Progress",
    "Refusal",
    "RoundTripRun",
    "RunSettings",
    "ScenarioInfo",
    "SeedReport",
    "ServerInfo",
    "SnapshotWritten",
    "TableRows",
    "Target",
    "TimedResult",
    "current",
    "describe_x",
    "diff_files",
    "downgrade",
    "explain_refusal",
    "history",
    "list_scenarios",
    "offline_sql",
    "preflight",
    "resolve_target",
    "revision_ids",
    "roundtrip",
    "seed",
    "silent",
    "snapshot",
    "upgrade",
    "with_x",
]
