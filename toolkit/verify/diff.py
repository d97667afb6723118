"""Compare two snapshots: a pure function, typed differences, text and JSON renderings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

from toolkit.verify.fingerprint import CatalogEntry
from toolkit.verify.model import Snapshot, TableSnapshot

ObjectKind = Literal[
    "table",
    "column",
    "constraint",
    "index",
    "trigger",
    "sequence",
    "enum",
    "view",
    "policy",
    "statistics",
    "rule",
]
Change = Literal["missing", "added", "changed"]


@dataclass(frozen=True)
class SchemaDifference:
    """An object present in only one snapshot, or defined differently in each.

    ``missing``: in the first snapshot only; ``added``: in the second only.
    """

    kind: ObjectKind
    change: Change
    name: str
    table: str | None = None
    before: str | None = None
    after: str | None = None

    @property
    def where(self) -> str:
        return f"{self.table}.{self.name}" if self.table and self.kind != "table" else self.name

    def describe(self) -> str:
        """One line, e.g. ``column sprints.goal_id missing (was uuid)``."""
        head = f"{self.kind} {self.where}"
        if self.change == "missing":
            return f"{head} missing (was {self.before})" if self.before else f"{head} missing"
        if self.change == "added":
            return f"{head} added ({self.after})" if self.after else f"{head} added"
        return f"{head} changed: {self.before} -> {self.after}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "type": "schema",
            "kind": self.kind,
            "change": self.change,
            "table": self.table,
            "name": self.name,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class DataDifference:
    """A table whose row count or row fingerprint differs between the snapshots."""

    table: str
    rows_before: int
    rows_after: int
    note: str = ""

    def describe(self) -> str:
        """One line: the row counts, or that the same number of rows holds other data."""
        if self.note:
            return f"data of {self.table}: {self.note}"
        if self.rows_before != self.rows_after:
            return f"data of {self.table}: {self.rows_before} rows before, {self.rows_after} after"
        return f"data of {self.table}: {self.rows_before} rows, but their content differs"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "type": "data",
            "table": self.table,
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "note": self.note,
        }


Difference = SchemaDifference | DataDifference


@dataclass(frozen=True)
class SnapshotDiff:
    """Everything that differs between two snapshots; ``ok`` when nothing does.

    ``notices`` are changes that lose nothing but must be said (a column that moved to
    another position: ``SELECT *``, ``COPY`` without a column list and positional ``INSERT``
    see it); they do not make the diff fail.
    """

    differences: tuple[Difference, ...] = ()
    notices: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def data_differences(self) -> tuple[DataDifference, ...]:
        return tuple(d for d in self.differences if isinstance(d, DataDifference))

    @property
    def schema_differences(self) -> tuple[SchemaDifference, ...]:
        return tuple(d for d in self.differences if isinstance(d, SchemaDifference))

    def tables(self) -> tuple[str, ...]:
        """The tables concerned by at least one difference, sorted."""
        names = {d.table for d in self.differences if d.table is not None}
        names |= {d.name for d in self.schema_differences if d.kind == "table"}
        return tuple(sorted(names))

    def render(self) -> str:
        """One difference per line; ``no differences`` when equal."""
        lines = [d.describe() for d in self.differences] or ["no differences"]
        return "\n".join([*lines, *(f"note: {n}" for n in self.notices)])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``ok`` and the list of differences."""
        return {
            "ok": self.ok,
            "differences": [d.to_json() for d in self.differences],
            "notices": list(self.notices),
        }


def diff(a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """What changed from snapshot ``a`` to snapshot ``b`` (structure first, then data)."""
    found: list[Difference] = []
    if a.schema != b.schema:
        found.append(SchemaDifference("table", "changed", "*", before=a.schema, after=b.schema))
    found += _compare_named(
        "table",
        None,
        {t.name: t for t in a.tables},
        {t.name: t for t in b.tables},
        describe=lambda t: f"{len(t.columns)} columns, {t.rows} rows",
        deep=False,
    )
    pairs = [(ta, tb) for ta in a.tables if (tb := b.table(ta.name)) is not None]
    for ta, tb in pairs:
        found += _table_structure(ta, tb)
    found += _compare_named(
        "sequence",
        None,
        {s.name: s for s in a.sequences},
        {s.name: s for s in b.sequences},
        describe=lambda s: s.describe(),
    )
    found += _compare_named(
        "enum",
        None,
        {e.name: e for e in a.enums},
        {e.name: e for e in b.enums},
        describe=lambda e: ", ".join(e.labels),
    )
    found += _compare_named(
        "view",
        None,
        {v.name: v for v in a.views},
        {v.name: v for v in b.views},
        describe=lambda v: v.definition,
    )
    found += _sequence_positions(a, b)
    found += _catalog(a, b)
    found += [d for ta, tb in pairs if (d := _table_data(ta, tb)) is not None]
    return SnapshotDiff(tuple(found), _column_order(a, b))


#: Catalog kinds that are objects of their own (compared like tables); the other catalog
#: entries are details of an object the typed fields hold (a column's grants, a table's
#: row-level security), compared only when that object exists on both sides, since its
#: absence is already one difference.
_STANDALONE: tuple[ObjectKind, ...] = ("policy", "statistics", "rule")


def _catalog(a: Snapshot, b: Snapshot) -> list[SchemaDifference]:
    found: list[SchemaDifference] = []
    kinds = sorted({e.kind for e in (*a.catalog, *b.catalog)} - {"column order"})
    for kind in kinds:
        before = {(e.table, e.name): e for e in a.catalog if e.kind == kind}
        after = {(e.table, e.name): e for e in b.catalog if e.kind == kind}
        if kind not in _STANDALONE:
            both = before.keys() & after.keys()
            before = {k: v for k, v in before.items() if k in both}
            after = {k: v for k, v in after.items() if k in both}
        for table in sorted({t for t, _ in before.keys() | after.keys()}):
            found += _compare_named(
                _object_kind(kind),
                table if kind not in ("table", "sequence", "view") else None,
                {n: e for (t, n), e in before.items() if t == table},
                {n: e for (t, n), e in after.items() if t == table},
                describe=_entry_text,
            )
    return found


def _object_kind(kind: str) -> ObjectKind:
    return next((k for k in get_args(ObjectKind) if k == kind), "table")


def _entry_text(entry: CatalogEntry) -> str:
    return entry.text


def _sequence_positions(a: Snapshot, b: Snapshot) -> list[SchemaDifference]:
    """A sequence whose position went back (reset, re-created): the next id may collide.

    Moving forward loses nothing (a migration that inserted and deleted rows leaves it
    ahead), so only a step back is a difference.
    """
    after = {s.name: s for s in b.sequences}
    found = []
    for old in a.sequences:
        new = after.get(old.name)
        if new is None or old.last_value is None:
            continue
        if new.last_value is None or new.last_value < old.last_value:
            was, now = f"position {old.last_value}", f"position {new.last_value or 'reset'}"
            found.append(SchemaDifference("sequence", "changed", old.name, None, was, now))
    return found


def _column_order(a: Snapshot, b: Snapshot) -> tuple[str, ...]:
    before = {e.table: e.text for e in a.catalog if e.kind == "column order"}
    after = {e.table: e.text for e in b.catalog if e.kind == "column order"}
    return tuple(
        f"column order of {table} changed: {before[table]} -> {after[table]}"
        for table in sorted(before.keys() & after.keys())
        if before[table] != after[table]
        and sorted(before[table].split(", ")) == sorted(after[table].split(", "))
    )


def _table_structure(a: TableSnapshot, b: TableSnapshot) -> list[Difference]:
    table = a.name
    return [
        *_compare_named(
            "column",
            table,
            {c.name: c for c in a.columns},
            {c.name: c for c in b.columns},
            describe=lambda c: c.describe(),
        ),
        *_compare_named(
            "constraint",
            table,
            {c.name: c for c in a.constraints},
            {c.name: c for c in b.constraints},
            describe=lambda c: c.definition,
        ),
        *_compare_named(
            "index",
            table,
            {i.name: i for i in a.indexes},
            {i.name: i for i in b.indexes},
            describe=lambda i: i.definition,
        ),
        *_compare_named(
            "trigger",
            table,
            {t.name: t for t in a.triggers},
            {t.name: t for t in b.triggers},
            describe=lambda t: t.definition,
        ),
    ]


def _table_data(a: TableSnapshot, b: TableSnapshot) -> DataDifference | None:
    if a.excluded_columns != b.excluded_columns:
        left = ", ".join(a.excluded_columns) or "none"
        right = ", ".join(b.excluded_columns) or "none"
        note = f"fingerprints leave out different columns ({left} vs {right})"
        return DataDifference(a.name, a.rows, b.rows, note)
    if a.rows == b.rows and a.fingerprint == b.fingerprint:
        return None
    return DataDifference(a.name, a.rows, b.rows)


T = TypeVar("T")


def _compare_named(
    kind: ObjectKind,
    table: str | None,
    before: Mapping[str, T],
    after: Mapping[str, T],
    *,
    describe: Callable[[T], str],
    deep: bool = True,
) -> Iterable[SchemaDifference]:
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if new is None and old is not None:
            yield SchemaDifference(kind, "missing", name, table, before=describe(old))
        elif old is None and new is not None:
            yield SchemaDifference(kind, "added", name, table, after=describe(new))
        elif deep and old is not None and new is not None and old != new:
            yield SchemaDifference(kind, "changed", name, table, describe(old), describe(new))
