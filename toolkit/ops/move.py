"""``move_fk_to_child`` and its inverse ``move_fk_to_parent`` (ADR 024).

An FK column moves from a parent table down to its child rows (each child gets its
parent's value); the value of parents without children is stashed in the parent's JSONB.
Back up, each parent takes its first child's value in an explicit order, else its stash;
children that disagreed with that choice are the declared loss.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import MigrateOperation, Operations
from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import reflect
from toolkit.ops.columns import (
    ColumnPlan,
    NamedForeignKey,
    default_fk_name,
    drop_with_foreign_keys,
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
    legacy_key,
    restore_values,
    stash_values,
)
from toolkit.sql import ddl
from toolkit.sql.checks import Check, CheckSet, key_text
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.family import Family
from toolkit.sql.idents import column_of, ident, type_sql
from toolkit.sql.jsonb_slot import JsonbSlot


@Operations.register_operation("move_fk_to_child")
class MoveFkToChildOp(MigrateOperation):
    """Move FK column ``parent.column`` to ``child.child_column`` (child rows via ``child_fk``)."""

    def __init__(
        self,
        parent: str,
        column: str,
        *,
        child: str,
        child_fk: str,
        child_column: str | None = None,
        fk_name: str | None = None,
        nullable: bool = False,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        referent_table: str | None = None,
        referent_key: str | None = None,
        ondelete: str | None = None,
        type_: Any = None,
        parent_key: str | None = None,
        order_by: tuple[str, ...] | None = None,
        schema: str | None = None,
    ) -> None:
        self.parent = parent
        self.column = column
        self.child = child
        self.child_fk = child_fk
        self.child_column = child_column or column
        self.fk_name = fk_name
        self.nullable = nullable
        self.jsonb_column = jsonb_column
        self.key = key or legacy_key(column)
        self.referent_table = referent_table
        self.referent_key = referent_key
        self.ondelete = ondelete
        self.type_ = type_
        self.parent_key = parent_key
        self.order_by = order_by
        self.schema = schema

    @classmethod
    def move_fk_to_child(
        cls,
        operations: Operations,
        parent: str,
        column: str,
        *,
        child: str,
        child_fk: str,
        child_column: str | None = None,
        fk_name: str | None = None,
        nullable: bool = False,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        referent_table: str | None = None,
        referent_key: str | None = None,
        ondelete: str | None = None,
        type_: Any = None,
        parent_key: str | None = None,
        schema: str | None = None,
    ) -> OpResult:
        """Give every ``child`` row its parent's ``column`` value, then drop it from ``parent``.

        ``child.child_column`` (default: same name) is added with the parent column's type,
        filled through ``child.child_fk -> parent``, made NOT NULL unless ``nullable``, and
        given a foreign key ``fk_name`` (default ``<child>_<child_column>_fkey``) to the
        parent column's referent (same actions; ``ondelete`` overrides). The value of parents
        without children goes into ``parent.jsonb_column`` under ``key`` (default
        ``legacy_<column>``), exactly as ``stash_column_in_jsonb`` does; then the parent's
        foreign keys (looked up) and column are dropped. Refuses, before any change, a JSONB
        that cannot take the key, a key already present, and (NOT NULL) children whose
        parent has no value. ``type_``, ``parent_key`` and ``referent_table`` are reflected
        online and required offline.
        """
        op = cls(
            parent,
            column,
            child=child,
            child_fk=child_fk,
            child_column=child_column,
            fk_name=fk_name,
            nullable=nullable,
            jsonb_column=jsonb_column,
            key=key,
            referent_table=referent_table,
            referent_key=referent_key,
            ondelete=ondelete,
            type_=type_,
            parent_key=parent_key,
            schema=schema,
        )
        result: OpResult = operations.invoke(op)
        return result

    def reverse(self) -> MoveFkToParentOp:
        """Move the column back up (first child by ``order_by``, default created_at + key)."""
        return MoveFkToParentOp(
            self.child,
            self.child_column,
            parent=self.parent,
            child_fk=self.child_fk,
            order_by=self.order_by,
            parent_column=self.column,
            nullable=None,
            jsonb_column=self.jsonb_column,
            key=self.key,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            ondelete=self.ondelete,
            type_=self.type_,
            parent_key=self.parent_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        return (
            f"Move {self.parent}.{self.column} down to {self.child}.{self.child_column}"
            f" (via {self.child}.{self.child_fk}; childless parents kept in"
            f" {self.jsonb_column}[{self.key!r}])"
        )

    def family(self, parent_key: str) -> Family:
        return Family(self.parent, parent_key, self.child, self.child_fk, self.schema)


@Operations.register_operation("move_fk_to_parent")
class MoveFkToParentOp(MigrateOperation):
    """Move FK column ``child.column`` up to ``parent.parent_column``: first child wins."""

    def __init__(
        self,
        child: str,
        column: str,
        *,
        parent: str,
        child_fk: str,
        order_by: tuple[str, ...] | None = None,
        parent_column: str | None = None,
        fk_name: str | None = None,
        nullable: bool | None = False,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        referent_table: str | None = None,
        referent_key: str | None = None,
        ondelete: str | None = None,
        on_missing: str = "refuse",
        fill_value: str | None = None,
        type_: Any = None,
        parent_key: str | None = None,
        child_key: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.child = child
        self.column = column
        self.parent = parent
        self.child_fk = child_fk
        self.order_by = tuple(order_by) if order_by is not None else None
        self.parent_column = parent_column or column
        self.fk_name = fk_name
        self.nullable = nullable
        self.jsonb_column = jsonb_column
        self.key = key or legacy_key(self.parent_column)
        self.referent_table = referent_table
        self.referent_key = referent_key
        self.ondelete = ondelete
        self.policy = MissingPolicy(on_missing, fill_value)
        self.type_ = type_
        self.parent_key = parent_key
        self.child_key = child_key
        self.schema = schema

    @classmethod
    def move_fk_to_parent(
        cls,
        operations: Operations,
        child: str,
        column: str,
        *,
        parent: str,
        child_fk: str,
        order_by: tuple[str, ...] | None = None,
        parent_column: str | None = None,
        fk_name: str | None = None,
        nullable: bool = False,
        jsonb_column: str = DEFAULT_JSONB,
        key: str | None = None,
        referent_table: str | None = None,
        referent_key: str | None = None,
        ondelete: str | None = None,
        on_missing: str = "refuse",
        fill_value: str | None = None,
        type_: Any = None,
        parent_key: str | None = None,
        child_key: str | None = None,
        schema: str | None = None,
    ) -> OpResult:
        """Give every ``parent`` row its first child's ``column`` value, then drop it from
        ``child``.

        First = first in ``order_by`` order (child columns; default ``("created_at",
        <child primary key>)``). Parents without children take the value stashed under
        ``key`` in ``jsonb_column`` (the key is removed exactly; a JSONB that was NULL
        becomes NULL again). Children whose value differs from their parent's chosen one
        are the declared loss (``lost``). ``parent.parent_column`` gets the child column's
        type (or ``type_``), its foreign key ``fk_name`` (default
        ``<parent>_<parent_column>_fkey``) to the same referent (``referent_table``
        overrides), NOT NULL unless ``nullable``; parents with neither a child nor a stash
        follow ``on_missing`` (``"refuse"`` before any change, ``"keep_null"``, ``"fill"``).
        ``type_``, ``parent_key`` and ``child_key`` are reflected online and required
        offline (``child_key`` only for the default order).
        """
        op = cls(
            child,
            column,
            parent=parent,
            child_fk=child_fk,
            order_by=order_by,
            parent_column=parent_column,
            fk_name=fk_name,
            nullable=nullable,
            jsonb_column=jsonb_column,
            key=key,
            referent_table=referent_table,
            referent_key=referent_key,
            ondelete=ondelete,
            on_missing=on_missing,
            fill_value=fill_value,
            type_=type_,
            parent_key=parent_key,
            child_key=child_key,
            schema=schema,
        )
        result: OpResult = operations.invoke(op)
        return result

    def reverse(self) -> MoveFkToChildOp:
        """Move the column back down to the children."""
        return MoveFkToChildOp(
            self.parent,
            self.parent_column,
            child=self.child,
            child_fk=self.child_fk,
            child_column=self.column,
            nullable=bool(self.nullable),
            jsonb_column=self.jsonb_column,
            key=self.key,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            ondelete=self.ondelete,
            type_=self.type_,
            parent_key=self.parent_key,
            order_by=self.order_by,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        order = ", ".join(self.order_by) if self.order_by else "created_at, key"
        return (
            f"Move {self.child}.{self.column} up to {self.parent}.{self.parent_column}"
            f" (first child by {order}, else {self.jsonb_column}[{self.key!r}])"
        )

    def family(self, parent_key: str) -> Family:
        return Family(self.parent, parent_key, self.child, self.child_fk, self.schema)


def _explicit_referent(op: MoveFkToChildOp | MoveFkToParentOp) -> ForeignKeySpec | None:
    """The foreign key the arguments describe (``referent_table`` given), else None."""
    if op.referent_table is None:
        return None
    key = (op.referent_key,) if op.referent_key else ()
    return ForeignKeySpec(op.referent_table, key, op.schema, ondelete=op.ondelete)


def _parent_key(
    runner: Runner, parent: str, child: str, child_fk: str, given: str | None, schema: str | None
) -> str:
    """What ``child.child_fk`` references in ``parent``: given, else reflected."""
    if given is not None:
        return given
    for fk in reflect.foreign_keys(runner, child, child_fk, schema):
        if fk.local_columns == 1 and fk.spec.referent_table == parent:
            return fk.spec.referent_columns[0]
    return reflect.single_key(runner, parent, schema)


@Operations.implementation_for(MoveFkToChildOp)
def move_fk_to_child(operations: Operations, op: MoveFkToChildOp) -> OpResult:
    """Implementation of ``op.move_fk_to_child`` (see the operation's docstring)."""
    runner = Runner(operations, "move_fk_to_child")
    where = f"{op.parent}.{op.column}"
    runner.require_online_args(
        where, type_=op.type_, parent_key=op.parent_key, referent_table=op.referent_table
    )
    type_text = type_sql(op.type_) if op.type_ is not None else None
    referent = _explicit_referent(op)
    parent_key = op.parent_key
    if not runner.offline:
        parent_key = _parent_key(runner, op.parent, op.child, op.child_fk, parent_key, op.schema)
        found = reflect.existing_column(runner, op.parent, op.column, op.schema)
        type_text = type_text or found.type_text
        check_jsonb_column(runner, op.parent, op.jsonb_column, op.schema)
        if reflect.column(runner, op.child, op.child_column, op.schema) is not None:
            raise UsageError(f"move_fk_to_child: column {op.child}.{op.child_column} exists")
        if referent is None:
            spec = reflect.single_foreign_key(runner, op.parent, op.column, op.schema)
            referent = spec.overriding(ondelete=op.ondelete) if spec is not None else None
    assert parent_key is not None and type_text is not None
    family = op.family(parent_key)
    slot = JsonbSlot(op.parent, op.column, op.jsonb_column, op.key, (parent_key,), op.schema)
    childless = family.childless("t")
    checks = slot.checks(row_filter=childless)
    if not op.nullable:
        checks.append(
            Check(
                op.parent,
                op.column,
                f"have no {op.column} but have {op.child} rows, whose {op.child_column}"
                " will be NOT NULL",
                sql.SQL("{} IS NULL AND {}").format(
                    column_of("t", op.column), family.has_children("t")
                ),
                "give those rows a value or pass nullable=True",
            )
        )
    child_fk_name = op.fk_name or default_fk_name(op.child, op.child_column)
    ident(child_fk_name)  # a name PostgreSQL would truncate fails before any change
    runner.run(ddl.lock_tables([op.parent, op.child], op.schema))
    runner.check(CheckSet(slot.source, key_text("t", (parent_key,)), tuple(checks)))
    runner.run(ddl.add_column(op.child, op.child_column, type_text, schema=op.schema))
    moved = runner.run(family.copy_down(op.column, op.child_column))
    stashed, was_null = stash_values(runner, slot, childless)
    if not op.nullable:
        runner.run(ddl.set_not_null(op.child, op.child_column, schema=op.schema))
    if referent is not None:
        runner.run(
            ddl.add_foreign_key(
                op.child, [op.child_column], child_fk_name, referent, schema=op.schema
            )
        )
    dropped = record_and_drop(runner, op.parent, op.column, schema=op.schema)
    notes = [f"dropped foreign key {name}" for name in dropped]
    if was_null:
        notes.append(f"{was_null} parent(s) had a NULL {op.jsonb_column} (kept in the stash)")
    return runner.result(op.parent, op.column, {"moved": moved, "stashed": stashed}, notes)


@Operations.implementation_for(MoveFkToParentOp)
def move_fk_to_parent(operations: Operations, op: MoveFkToParentOp) -> OpResult:
    """Implementation of ``op.move_fk_to_parent`` (see the operation's docstring)."""
    runner = Runner(operations, "move_fk_to_parent")
    where = f"{op.parent}.{op.parent_column}"
    runner.require_online_args(
        where,
        parent_key=op.parent_key,
        child_key=op.child_key if op.order_by is None else "",
    )
    parent_key, order_by = op.parent_key, op.order_by
    if not runner.offline:
        parent_key = _parent_key(runner, op.parent, op.child, op.child_fk, parent_key, op.schema)
        reflect.existing_column(runner, op.child, op.column, op.schema)
        check_jsonb_column(runner, op.parent, op.jsonb_column, op.schema)
        if reflect.column(runner, op.parent, op.parent_column, op.schema) is not None:
            raise UsageError(f"move_fk_to_parent: column {where} already exists")
        if order_by is None:
            order_by = (
                "created_at",
                op.child_key or reflect.single_key(runner, op.child, op.schema),
            )
    if order_by is None:
        order_by = ("created_at", str(op.child_key))
    assert parent_key is not None
    family = op.family(parent_key)

    def child_type() -> str | None:
        found = reflect.column(runner, op.child, op.column, op.schema)
        return found.type_text if found else None

    def child_fk() -> NamedForeignKey | None:
        spec = reflect.single_foreign_key(runner, op.child, op.column, op.schema)
        if spec is None:
            return None
        return (
            op.fk_name or default_fk_name(op.parent, op.parent_column),
            spec.overriding(ondelete=op.ondelete),
        )

    explicit: NamedForeignKey | None = None
    given = _explicit_referent(op)
    if given is not None:
        spec = reflect.with_referent_key(runner, given)
        explicit = (op.fk_name or default_fk_name(op.parent, op.parent_column), spec)
    plan = resolve_plan(
        runner,
        op.parent,
        op.parent_column,
        schema=op.schema,
        type_text=type_sql(op.type_) if op.type_ is not None else None,
        nullable=op.nullable,
        foreign_key=explicit,
        fallback_type=child_type,
        fallback_fk=child_fk,
    )
    slot = JsonbSlot(op.parent, op.parent_column, op.jsonb_column, op.key, (parent_key,), op.schema)
    childless = family.childless("t")
    checks: list[Check] = op.policy.refusal(
        op.parent,
        op.parent_column,
        sql.SQL("{} AND NOT {}").format(childless, slot.holds_key),
        f"have no {op.child} row and no {op.key!r} in {op.jsonb_column}, and"
        f" {op.parent_column} is NOT NULL",
        applies=not plan.nullable,
    )
    orphans = [slot.orphan_check(plan.type_text, ref, childless) for ref in plan.referents()]
    runner.run(ddl.lock_tables([op.parent, op.child], op.schema))
    runner.check(CheckSet(slot.source, key_text("t", (parent_key,)), tuple(checks)))
    runner.check(
        op.policy.fill_checks(op.parent, op.parent_column, plan.type_text, plan.referents())
    )
    with runner.checked_by_foreign_keys(
        CheckSet(slot.source, key_text("t", (parent_key,)), tuple(orphans))
    ):
        counts, notes = _copy_up(runner, op, plan, slot, family, order_by)
    dropped = drop_with_foreign_keys(runner, op.child, op.column, schema=op.schema)
    notes += [f"dropped foreign key {name}" for name in dropped]
    forget_recorded(runner, op.parent, op.parent_column, schema=op.schema)
    return runner.result(op.child, op.column, counts, notes)


def _copy_up(
    runner: Runner,
    op: MoveFkToParentOp,
    plan: ColumnPlan,
    slot: JsonbSlot,
    family: Family,
    order_by: tuple[str, ...],
) -> tuple[dict[str, int], list[str]]:
    """``move_fk_to_parent``'s changes up to the parent's finished column: add it, copy the
    first child's value, restore the stash, constrain; returns the counts and notes."""
    runner.run(plan.add())
    moved = runner.run(family.copy_up_first(op.column, op.parent_column, order_by))
    counts: dict[str, int] = {"moved": moved}
    notes: list[str] = []
    if not runner.offline:
        disagree = int(runner.scalar(family.disagreeing_children(op.column, op.parent_column)))
        overridden = int(runner.scalar(slot.overridden_count(plan.type_text)))
        counts["lost"] = disagree + overridden
        if disagree:
            notes.append(
                f"{disagree} {op.child} row(s) had another {op.column} than their parent's"
                f" first (by {', '.join(order_by)}): lost (declared)"
            )
        if overridden:
            notes.append(
                f"{overridden} stashed {op.key!r} value(s) overridden by a child's value: lost"
            )
        counts["restored"] = int(runner.scalar(slot.pending_count()))
    restore_values(runner, slot, plan.type_text, keep_existing=True)
    policy_counts, policy_notes = finish_column(runner, plan, op.policy)
    counts.update(policy_counts)
    return counts, notes + policy_notes
