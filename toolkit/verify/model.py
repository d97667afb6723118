"""What a snapshot holds: a schema's structure and a fingerprint of each table's data.

Immutable values, comparable with ``==`` and serialisable to JSON (``Snapshot.to_json`` /
``Snapshot.from_json``). Columns form a set: PostgreSQL cannot restore physical column order,
so order is not part of equality (``diff`` reports a changed order as a notice). Sequence
positions are recorded and compared by ``diff`` only when one goes back. ``catalog`` holds
the facts of the full-catalog fingerprint the typed fields leave out (grants, comments,
statistics targets, trigger states, row-level security, policies, extended statistics,
rules, inheritance and partitions, column order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import UsageError
from toolkit.verify.fingerprint import CatalogEntry

SNAPSHOT_FORMAT = "lossless.snapshot/2"


@dataclass(frozen=True)
class Column:
    """A column as the catalog describes it (``type`` is ``format_type`` output)."""

    name: str
    type: str
    not_null: bool
    default: str | None = None
    identity: str | None = None
    generated: str | None = None
    collation: str | None = None

    def describe(self) -> str:
        """``type NOT NULL DEFAULT ...``, as in a table definition."""
        parts = [self.type]
        if self.collation:
            parts.append(f"COLLATE {self.collation}")
        if self.not_null:
            parts.append("NOT NULL")
        if self.default is not None:
            word = "GENERATED ALWAYS AS" if self.generated else "DEFAULT"
            parts.append(f"{word} {self.default}")
        if self.identity:
            parts.append(f"GENERATED {self.identity.upper()} AS IDENTITY")
        return " ".join(parts)


@dataclass(frozen=True)
class Constraint:
    """A table constraint: name, kind and ``pg_get_constraintdef`` text."""

    name: str
    kind: str
    definition: str


@dataclass(frozen=True)
class Definition:
    """An object known by name and a definition text (index, trigger, view)."""

    name: str
    definition: str


@dataclass(frozen=True)
class TableSnapshot:
    """One table: structure, row count and the sum of its row hashes."""

    name: str
    columns: frozenset[Column]
    constraints: tuple[Constraint, ...] = ()
    indexes: tuple[Definition, ...] = ()
    triggers: tuple[Definition, ...] = ()
    rows: int = 0
    fingerprint: int = 0
    excluded_columns: tuple[str, ...] = ()

    def column(self, name: str) -> Column | None:
        """The column called ``name``, if any."""
        return next((c for c in self.columns if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the fingerprint as a string: it exceeds 64 bits)."""
        return {
            "columns": [_column_json(c) for c in sorted(self.columns, key=lambda c: c.name)],
            "constraints": {
                c.name: {"kind": c.kind, "definition": c.definition} for c in self.constraints
            },
            "indexes": {i.name: i.definition for i in self.indexes},
            "triggers": {t.name: t.definition for t in self.triggers},
            "rows": self.rows,
            "fingerprint": str(self.fingerprint),
            "excluded_columns": list(self.excluded_columns),
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> TableSnapshot:
        """The inverse of ``to_json``."""
        return cls(
            name=name,
            columns=frozenset(Column(**c) for c in data["columns"]),
            constraints=tuple(
                Constraint(name=n, kind=c["kind"], definition=c["definition"])
                for n, c in sorted(data.get("constraints", {}).items())
            ),
            indexes=_definitions(data.get("indexes", {})),
            triggers=_definitions(data.get("triggers", {})),
            rows=int(data["rows"]),
            fingerprint=int(data["fingerprint"]),
            excluded_columns=tuple(data.get("excluded_columns", ())),
        )


@dataclass(frozen=True)
class SequenceSnapshot:
    """A sequence's definition; ``last_value`` is informative and not part of equality."""

    name: str
    data_type: str
    start: int
    increment: int
    minimum: int
    maximum: int
    cycle: bool
    owned_by: str | None = None
    last_value: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        """The definition as one line."""
        text = (
            f"{self.data_type} START {self.start} INCREMENT {self.increment} "
            f"MINVALUE {self.minimum} MAXVALUE {self.maximum}"
        )
        if self.cycle:
            text += " CYCLE"
        if self.owned_by:
            text += f" OWNED BY {self.owned_by}"
        return text


@dataclass(frozen=True)
class EnumType:
    """An enum type and its labels in sort order."""

    name: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """A schema's structure plus per-table data fingerprints, taken inside PostgreSQL."""

    schema: str
    tables: tuple[TableSnapshot, ...] = ()
    sequences: tuple[SequenceSnapshot, ...] = ()
    enums: tuple[EnumType, ...] = ()
    views: tuple[Definition, ...] = ()
    catalog: tuple[CatalogEntry, ...] = ()
    server_version: str = field(default="", compare=False)

    def table(self, name: str) -> TableSnapshot | None:
        """The table called ``name``, if the snapshot has it."""
        return next((t for t in self.tables if t.name == name), None)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``Snapshot.from_json`` reads it back to an equal snapshot."""
        return {
            "format": SNAPSHOT_FORMAT,
            "schema": self.schema,
            "server_version": self.server_version,
            "tables": {t.name: t.to_json() for t in self.tables},
            "sequences": {s.name: _sequence_json(s) for s in self.sequences},
            "enums": {e.name: list(e.labels) for e in self.enums},
            "views": {v.name: v.definition for v in self.views},
            "catalog": [[e.kind, e.part, e.table, e.name, e.text] for e in self.catalog],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        """Read a snapshot written by ``to_json``; ``UsageError`` for anything else."""
        if not isinstance(data, Mapping) or data.get("format") != SNAPSHOT_FORMAT:
            raise UsageError(f"not a lossless snapshot (expected format {SNAPSHOT_FORMAT!r})")
        try:
            return cls(
                schema=str(data["schema"]),
                server_version=str(data.get("server_version", "")),
                tables=tuple(
                    TableSnapshot.from_json(n, t) for n, t in sorted(data["tables"].items())
                ),
                sequences=tuple(
                    SequenceSnapshot(name=n, **s) for n, s in sorted(data["sequences"].items())
                ),
                enums=tuple(EnumType(n, tuple(v)) for n, v in sorted(data["enums"].items())),
                views=_definitions(data["views"]),
                catalog=tuple(
                    CatalogEntry(kind, part, str(data["schema"]), table, name, body)
                    for kind, part, table, name, body in data["catalog"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"malformed lossless snapshot: {exc!r}") from None


def _column_json(column: Column) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "not_null": column.not_null,
        "default": column.default,
        "identity": column.identity,
        "generated": column.generated,
        "collation": column.collation,
    }


def _sequence_json(sequence: SequenceSnapshot) -> dict[str, Any]:
    return {
        "data_type": sequence.data_type,
        "start": sequence.start,
        "increment": sequence.increment,
        "minimum": sequence.minimum,
        "maximum": sequence.maximum,
        "cycle": sequence.cycle,
        "owned_by": sequence.owned_by,
        "last_value": sequence.last_value,
    }


def _definitions(data: Mapping[str, str]) -> tuple[Definition, ...]:
    return tuple(Definition(n, d) for n, d in sorted(data.items()))
