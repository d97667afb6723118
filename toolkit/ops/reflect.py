"""Online catalog lookups the operations need (primary keys, columns, foreign keys, stash)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops.runtime import Runner
from toolkit.sql import lookups
from toolkit.sql.attached import collation_of, statements_of
from toolkit.sql.ddl import FK_ACTIONS, ForeignKeySpec
from toolkit.sql.idents import Sql
from toolkit.sql.online import PROGRESS_TABLE, read_progress
from toolkit.sql.stash import STASH_TABLE, count_entries, recorded_column


@dataclass(frozen=True)
class ForeignKeyInfo:
    """A foreign key as the catalog has it."""

    name: str
    definition: str
    spec: ForeignKeySpec
    validated: bool
    local_columns: int


@dataclass(frozen=True)
class ColumnDef:
    """A column's definition: live from the catalog, or as the stash recorded it."""

    type_text: str
    nullable: bool
    default: str | None = None
    foreign_keys: tuple[tuple[str, str], ...] = ()  # (name, pg_get_constraintdef text)
    #: (schema, table, key column) referenced by each single-column foreign key
    references: tuple[tuple[str | None, str, str], ...] = ()
    #: statements re-creating what was attached (``toolkit.sql.attached``), and collation
    attached: tuple[str, ...] = ()
    collation: str | None = None
    #: (name, definition) of the NOT NULL constraint (PostgreSQL 18 names them)
    not_null: tuple[str, str] | None = None
    #: (referent schema, table, columns) of each of ``foreign_keys``, in the same order
    fk_referents: tuple[tuple[str | None, str, tuple[str, ...]], ...] = ()


def table_exists(runner: Runner, table: str, schema: str | None) -> bool:
    """Whether ``table`` exists."""
    return bool(runner.scalar(lookups.table_exists(table, schema)))


def primary_key(runner: Runner, table: str, schema: str | None) -> tuple[str, ...]:
    """``table``'s primary key columns; ``UsageError`` when it has none or does not exist."""
    if not table_exists(runner, table, schema):
        raise UsageError(f"{runner.operation}: table {table!r} does not exist")
    names = tuple(str(r[0]) for r in runner.rows(lookups.primary_key(table, schema)))
    if not names:
        raise UsageError(f"{runner.operation}: table {table!r} has no primary key")
    return names


def primary_key_or_ctid(runner: Runner, table: str, schema: str | None) -> tuple[str, ...]:
    """``table``'s primary key columns, else ``ctid`` (to name its rows in a refusal)."""
    names = tuple(str(r[0]) for r in runner.rows(lookups.primary_key(table, schema)))
    return names or ("ctid",)


def single_key(runner: Runner, table: str, schema: str | None) -> str:
    """``table``'s primary key, which must be one column."""
    names = primary_key(runner, table, schema)
    if len(names) != 1:
        raise UsageError(
            f"{runner.operation}: {table} has a composite primary key {names}; only"
            " single-column keys are supported here"
        )
    return names[0]


def column(runner: Runner, table: str, name: str, schema: str | None) -> ColumnDef | None:
    """The live definition of ``table.name`` (foreign keys not included), or None."""
    found = runner.rows(lookups.column(table, name, schema))
    if not found:
        return None
    type_text, nullable, default = found[0]
    return ColumnDef(str(type_text), bool(nullable), default)


def existing_column(runner: Runner, table: str, name: str, schema: str | None) -> ColumnDef:
    """Like ``column`` but the column must exist."""
    found = column(runner, table, name, schema)
    if found is None:
        raise UsageError(f"{runner.operation}: column {table}.{name} does not exist")
    return found


def foreign_keys(runner: Runner, table: str, name: str, schema: str | None) -> list[ForeignKeyInfo]:
    """Every foreign key of ``table`` involving column ``name``, by real name."""
    found = []
    for row in runner.rows(lookups.foreign_keys_on(table, name, schema)):
        (
            conname,
            definition,
            ref_schema,
            ref_table,
            ref_cols,
            validated,
            on_delete,
            on_update,
            deferrable,
            deferred,
            n_local,
            match,
        ) = row
        spec = ForeignKeySpec(
            referent_table=str(ref_table),
            referent_columns=tuple(ref_cols),
            referent_schema=str(ref_schema),
            ondelete=FK_ACTIONS[str(on_delete)],
            onupdate=FK_ACTIONS[str(on_update)],
            deferrable=bool(deferrable),
            initially_deferred=bool(deferred),
            match="FULL" if match == "f" else None,
        )
        found.append(
            ForeignKeyInfo(str(conname), str(definition), spec, bool(validated), int(n_local))
        )
    return found


def single_foreign_key(
    runner: Runner, table: str, name: str, schema: str | None
) -> ForeignKeySpec | None:
    """The referent of ``table.name`` if exactly one single-column foreign key has it."""
    found = [fk for fk in foreign_keys(runner, table, name, schema) if fk.local_columns == 1]
    return found[0].spec if len(found) == 1 else None


def validated_by(runner: Runner, found: list[ForeignKeyInfo], spec: ForeignKeySpec) -> bool:
    """Whether a validated key of ``found`` references what ``spec`` does (so every value
    is known to have its referent): the same table (schema included: ``spec``'s unqualified
    name is resolved as the statements will resolve it) and the same columns."""
    return any(
        fk.validated
        and fk.spec.referent_columns == spec.referent_columns
        and fk.spec.referent_table == spec.referent_table
        and same_table(runner, fk.spec, spec)
        for fk in found
    )


def same_table(runner: Runner, a: ForeignKeySpec, b: ForeignKeySpec) -> bool:
    """Whether the referents of ``a`` and ``b`` are one table."""
    if a.referent_schema is not None and b.referent_schema is not None:
        return a.referent_schema == b.referent_schema
    query = sql.SQL("SELECT {} = {}").format(
        lookups.regclass(a.referent_table, a.referent_schema),
        lookups.regclass(b.referent_table, b.referent_schema),
    )
    return bool(runner.scalar(query))


def with_referent_key(runner: Runner, spec: ForeignKeySpec) -> ForeignKeySpec:
    """``spec`` naming its referenced column: online, the referent's primary key when the
    key was left implicit (offline it stays implicit: ``REFERENCES table`` means its key)."""
    if spec.referent_columns or runner.offline:
        return spec
    key = single_key(runner, spec.referent_table, spec.referent_schema)
    return replace(spec, referent_columns=(key,))


def stash_exists(runner: Runner, schema: str | None) -> bool:
    """Whether the toolkit's stash table exists."""
    return table_exists(runner, STASH_TABLE, schema)


def stash_count(runner: Runner, kind: str, table: str, column: str, schema: str | None) -> int:
    """How many stash entries of ``kind`` exist for ``table.column`` (0 without a stash)."""
    if not stash_exists(runner, schema):
        return 0
    return int(runner.scalar(count_entries(kind, table, column, schema=schema)))


def json_value(runner: Runner, query: Sql) -> Any:
    """The one jsonb value ``query`` returns, decoded (None: no row, or SQL NULL)."""
    found: Any = runner.scalar(query)
    return json.loads(found) if isinstance(found, str) else found


def recorded(runner: Runner, table: str, name: str, schema: str | None) -> ColumnDef | None:
    """The definition the stash recorded when ``table.name`` was dropped, if any."""
    if not stash_exists(runner, schema):
        return None
    payload = json_value(runner, recorded_column(table, name, schema=schema))
    if payload is None:
        return None
    return ColumnDef(
        type_text=str(payload["type"]),
        nullable=bool(payload["nullable"]),
        default=payload.get("default"),
        foreign_keys=tuple((fk["name"], fk["definition"]) for fk in payload["foreign_keys"]),
        references=tuple(
            (fk.get("referent_schema"), fk["referent_table"], fk["referent_columns"][0])
            for fk in payload["foreign_keys"]
            if len(fk.get("referent_columns") or ()) == 1
        ),
        attached=tuple(statements_of(payload.get("attached"))),
        collation=collation_of(payload.get("attached")),
        not_null=_named_not_null(payload.get("not_null")),
        fk_referents=tuple(
            (
                fk.get("referent_schema"),
                str(fk["referent_table"]),
                tuple(fk.get("referent_columns") or ()),
            )
            for fk in payload["foreign_keys"]
        ),
    )


def _named_not_null(recorded: Any) -> tuple[str, str] | None:
    if not isinstance(recorded, dict):
        return None
    return str(recorded["name"]), str(recorded["definition"])


def online_run_under_way(runner: Runner, table: str, column: str, schema: str | None) -> bool:
    """Whether an online run of an operation on ``table.column`` left its progress entry
    (``toolkit.ops.online``): what it created is then its own, to resume."""
    if not table_exists(runner, PROGRESS_TABLE, schema):
        return False
    return runner.scalar(read_progress(table, column, schema=schema)) is not None
