"""``stash_column_in_jsonb`` and its inverse ``restore_column_from_jsonb``.

The value moves into the row's own JSONB under a key; everything that must come back but
must not show in that JSONB (that it was SQL NULL, the column's definition) goes to the
toolkit's stash table.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import MigrateOperation, Operations
from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import reflect
from toolkit.ops.columns import (
    NamedForeignKey,
    default_fk_name,
    finish_column,
    forget_recorded,
    record_and_drop,
    resolve_plan,
)
from toolkit.ops.policies import MissingPolicy
from toolkit.ops.results import OpResult
from toolkit.ops.runtime import Runner
from toolkit.ops.slots import (
    DEFAULT_JSONB,
    check_jsonb_column,
    key_columns,
    legacy_key,
    restore_values,
    stash_values,
)
from toolkit.sql import ddl
from toolkit.sql.checks import Check, CheckSet, key_text
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import type_sql
from toolkit.sql.jsonb_slot import JsonbSlot


@Operations.register_operation("stash_column_in_jsonb")
class StashColumnInJsonbOp(MigrateOperation):
    """Move ``table.column`` into ``table.jsonb_column -> key`` and drop the column."""

    def __init__(
        self,
        table: str,
        column: str,
        *,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        primary_key: str | tuple[str, ...] | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.jsonb_column = jsonb_column
        self.key = key or legacy_key(column)
        self.primary_key = primary_key
        self.schema = schema

    @classmethod
    def stash_column_in_jsonb(
        cls,
        operations: Operations,
        table: str,
        column: str,
        *,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        primary_key: str | tuple[str, ...] | None = None,
        schema: str | None = None,
    ) -> OpResult:
        """Write every non-NULL ``table.column`` into ``jsonb_column`` under ``key`` (default
        ``legacy_<column>``), then drop the column's foreign keys (looked up) and the column.

        Values keep their exact text (``to_jsonb``); rows whose value is NULL are untouched.
        A row whose JSONB is SQL NULL gets ``{key: value}`` and the stash remembers it was
        NULL, so the restore gives NULL back. Refuses, before any change, rows whose JSONB
        is not an object where a value must go, and rows already holding ``key``.
        ``primary_key`` (which identifies rows in the stash) is reflected online and
        required offline.
        """
        op = cls(
            table,
            column,
            jsonb_column=jsonb_column,
            key=key,
            primary_key=primary_key,
            schema=schema,
        )
        result: OpResult = operations.invoke(op)
        return result

    def reverse(self) -> RestoreColumnFromJsonbOp:
        """Restore the column from the JSONB (definition from the stash's record)."""
        return RestoreColumnFromJsonbOp(
            self.table,
            self.column,
            jsonb_column=self.jsonb_column,
            key=self.key,
            primary_key=self.primary_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        return f"Stash {self.table}.{self.column} in {self.jsonb_column}[{self.key!r}]"


@Operations.register_operation("restore_column_from_jsonb")
class RestoreColumnFromJsonbOp(MigrateOperation):
    """Re-create ``table.column`` from ``table.jsonb_column -> key`` and remove the key.

    ``type_``/``nullable`` left ``None`` are resolved at run time from the stash's record.
    """

    def __init__(
        self,
        table: str,
        column: str,
        *,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        type_: Any = None,
        nullable: bool | None = None,
        foreign_key: tuple[str, str] | None = None,
        fk_name: str | None = None,
        ondelete: str | None = None,
        on_missing: str = "refuse",
        fill_value: str | None = None,
        primary_key: str | tuple[str, ...] | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.jsonb_column = jsonb_column
        self.key = key or legacy_key(column)
        self.type_ = type_
        self.nullable = nullable
        self.foreign_key = foreign_key
        self.fk_name = fk_name
        self.ondelete = ondelete
        self.policy = MissingPolicy(on_missing, fill_value)
        self.primary_key = primary_key
        self.schema = schema

    @classmethod
    def restore_column_from_jsonb(
        cls,
        operations: Operations,
        table: str,
        column: str,
        *,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        type_: Any = None,
        nullable: bool = True,
        foreign_key: tuple[str, str] | None = None,
        fk_name: str | None = None,
        ondelete: str | None = None,
        on_missing: str = "refuse",
        fill_value: str | None = None,
        primary_key: str | tuple[str, ...] | None = None,
        schema: str | None = None,
    ) -> OpResult:
        """Re-add ``table.column`` (type ``type_``) from ``jsonb_column -> key`` and remove
        the key; JSONB that was SQL NULL before the stash becomes NULL again.

        ``type_`` (a type string or SQLAlchemy type) defaults online to what the stash
        recorded; offline it is required. ``foreign_key=("referent_table", "key")`` adds a
        foreign key named ``fk_name`` (default ``<table>_<column>_fkey``) ``ON DELETE
        ondelete``; without it, online, the foreign keys the stash recorded are re-created
        under their names (offline: replayed from the record when the script runs).
        ``nullable=False`` sets NOT NULL; rows with no value then follow ``on_missing``
        (``"refuse"`` before any change, ``"keep_null"``, or ``"fill"`` with ``fill_value``).
        Stashed values whose referent is gone are refused before any change.
        """
        op = cls(
            table,
            column,
            jsonb_column=jsonb_column,
            key=key,
            type_=type_,
            nullable=nullable,
            foreign_key=foreign_key,
            fk_name=fk_name,
            ondelete=ondelete,
            on_missing=on_missing,
            fill_value=fill_value,
            primary_key=primary_key,
            schema=schema,
        )
        result: OpResult = operations.invoke(op)
        return result

    def reverse(self) -> StashColumnInJsonbOp:
        """Stash the column again."""
        return StashColumnInJsonbOp(
            self.table,
            self.column,
            jsonb_column=self.jsonb_column,
            key=self.key,
            primary_key=self.primary_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        return f"Restore {self.table}.{self.column} from {self.jsonb_column}[{self.key!r}]"


@Operations.implementation_for(StashColumnInJsonbOp)
def stash_column_in_jsonb(operations: Operations, op: StashColumnInJsonbOp) -> OpResult:
    """Implementation of ``op.stash_column_in_jsonb`` (see the operation's docstring)."""
    runner = Runner(operations, "stash_column_in_jsonb")
    runner.require_online_args(f"{op.table}.{op.column}", primary_key=op.primary_key)
    keys = key_columns(runner, op.table, op.primary_key, op.schema)
    if not runner.offline:
        reflect.existing_column(runner, op.table, op.column, op.schema)
        check_jsonb_column(runner, op.table, op.jsonb_column, op.schema)
    slot = JsonbSlot(op.table, op.column, op.jsonb_column, op.key, keys, op.schema)
    runner.run(ddl.lock_tables([op.table], op.schema))
    runner.check(CheckSet(slot.source, key_text("t", keys), tuple(slot.checks())))
    stashed, was_null = stash_values(runner, slot)
    dropped_fks = record_and_drop(runner, op.table, op.column, schema=op.schema)
    notes = [f"dropped foreign key {name}" for name in dropped_fks]
    if was_null:
        notes.append(f"{was_null} row(s) had a NULL {op.jsonb_column} (kept in the stash)")
    return runner.result(op.table, op.column, {"stashed": stashed}, notes)


@Operations.implementation_for(RestoreColumnFromJsonbOp)
def restore_column_from_jsonb(operations: Operations, op: RestoreColumnFromJsonbOp) -> OpResult:
    """Implementation of ``op.restore_column_from_jsonb`` (see the operation's docstring)."""
    runner = Runner(operations, "restore_column_from_jsonb")
    where = f"{op.table}.{op.column}"
    runner.require_online_args(where, primary_key=op.primary_key)
    keys = key_columns(runner, op.table, op.primary_key, op.schema)
    if not runner.offline:
        if reflect.column(runner, op.table, op.column, op.schema) is not None:
            raise UsageError(f"restore_column_from_jsonb: column {where} already exists")
        check_jsonb_column(runner, op.table, op.jsonb_column, op.schema)
    explicit: NamedForeignKey | None = None
    if op.foreign_key is not None:
        ref_table, ref_key = op.foreign_key
        explicit = (
            op.fk_name or default_fk_name(op.table, op.column),
            ForeignKeySpec(ref_table, (ref_key,), op.schema, ondelete=op.ondelete),
        )
    plan = resolve_plan(
        runner,
        op.table,
        op.column,
        schema=op.schema,
        type_text=type_sql(op.type_) if op.type_ is not None else None,
        nullable=op.nullable,
        foreign_key=explicit,
    )
    slot = JsonbSlot(op.table, op.column, op.jsonb_column, op.key, keys, op.schema)
    checks: list[Check] = op.policy.refusal(
        op.table,
        op.column,
        sql.SQL("NOT {}").format(slot.holds_key),
        f"have no {op.key!r} in {op.jsonb_column} and {op.column} is NOT NULL",
        applies=not plan.nullable,
    )
    orphans = [slot.orphan_check(plan.type_text, ref) for ref in plan.referents()]
    runner.run(ddl.lock_tables([op.table], op.schema))
    runner.check(CheckSet(slot.source, key_text("t", keys), tuple(checks)))
    runner.check(op.policy.fill_checks(op.table, op.column, plan.type_text, plan.referents()))
    with runner.checked_by_foreign_keys(CheckSet(slot.source, key_text("t", keys), tuple(orphans))):
        runner.run(plan.add())
        restored = restore_values(runner, slot, plan.type_text)
        counts, notes = finish_column(runner, plan, op.policy)
    counts["restored"] = restored
    forget_recorded(runner, op.table, op.column, schema=op.schema)
    return runner.result(op.table, op.column, counts, notes)
