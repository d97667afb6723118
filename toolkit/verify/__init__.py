"""Snapshots of a schema (structure + data fingerprints, computed inside PostgreSQL) and diffs.

``take_snapshot(conn)`` summarises a schema without moving a row to Python; ``diff(a, b)``
compares two snapshots (a pure function); ``capture_rows`` / ``compare_rows`` name the rows
and columns behind a data difference, by primary key.
"""

from __future__ import annotations

from toolkit.verify.diff import (
    DataDifference,
    Difference,
    SchemaDifference,
    SnapshotDiff,
    diff,
)
from toolkit.verify.model import (
    Column,
    Constraint,
    Definition,
    EnumType,
    SequenceSnapshot,
    Snapshot,
    TableSnapshot,
)
from toolkit.verify.rows import (
    SIDE_SCHEMA,
    ColumnChange,
    RowCapture,
    RowChanges,
    ValueChange,
    capture_rows,
    compare_rows,
    drop_capture,
)
from toolkit.verify.snapshot import DEFAULT_EXCLUDED_TABLES, take_snapshot

__all__ = [
    "DEFAULT_EXCLUDED_TABLES",
    "SIDE_SCHEMA",
    "Column",
    "ColumnChange",
    "Constraint",
    "DataDifference",
    "Definition",
    "Difference",
    "EnumType",
    "RowCapture",
    "RowChanges",
    "SchemaDifference",
    "SequenceSnapshot",
    "Snapshot",
    "SnapshotDiff",
    "TableSnapshot",
    "ValueChange",
    "capture_rows",
    "compare_rows",
    "diff",
    "drop_capture",
    "take_snapshot",
]
