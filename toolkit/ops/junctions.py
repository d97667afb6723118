"""``promote_fk_to_junction`` and its inverse ``collapse_junction_to_fk``.

Promote turns ``table.column`` (an FK) into a junction table holding one link per
non-NULL value; collapse puts the first link per owner back into the column and drops the
junction, declaring the other links lost unless ``keep_extra_links`` stashes them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alembic.operations import MigrateOperation, Operations

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
from toolkit.sql import ddl
from toolkit.sql.checks import Check, CheckSet, key_text, missing_referent
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import column_of, table_as_t, type_sql
from toolkit.sql.junction import JunctionShape
from toolkit.sql.stash import analyze_stash, ensure_stash, forget

DEFAULT_ORDER = ("created_at", "id")


@Operations.register_operation("promote_fk_to_junction")
class PromoteFkToJunctionOp(MigrateOperation):
    """Replace FK column ``table.column`` by a junction ``(owner_column, referent_column)``."""

    def __init__(
        self,
        table: str,
        column: str,
        *,
        junction: str,
        owner_column: str,
        referent_column: str,
        referent_table: str | None = None,
        referent_key: str | None = None,
        unique_name: str | None = None,
        ondelete: str | None = "CASCADE",
        index: bool = True,
        owner_key: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.junction = junction
        self.owner_column = owner_column
        self.referent_column = referent_column
        self.referent_table = referent_table
        self.referent_key = referent_key
        self.unique_name = unique_name
        self.ondelete = ondelete
        self.index = index
        self.owner_key = owner_key
        self.schema = schema

    @classmethod
    def promote_fk_to_junction(
        cls,
        operations: Operations,
        table: str,
        column: str,
        *,
        junction: str,
        owner_column: str,
        referent_column: str,
        referent_table: str | None = None,
        referent_key: str | None = None,
        unique_name: str | None = None,
        ondelete: str | None = "CASCADE",
        index: bool = True,
        owner_key: str | None = None,
        schema: str | None = None,
    ) -> OpResult:
        """Move every non-NULL ``table.column`` value into a new junction table.

        The junction is ``junction(id uuid PK default gen_random_uuid(), owner_column NOT
        NULL -> table(owner_key), referent_column NOT NULL -> referent_table(referent_key),
        created_at timestamp NOT NULL default now())`` with ``UNIQUE(owner_column,
        referent_column)`` named ``unique_name`` (default ``uq_<junction>_<owner>_<referent>``),
        both foreign keys ``ON DELETE ondelete`` and, with ``index``, an index
        ``ix_<junction>_<column>`` on each. Rows are loaded into the bare table first, then
        constrained. The column's foreign keys (looked up by name) and the column are
        dropped; its definition is recorded so ``collapse_junction_to_fk`` can restore it.
        Links a previous collapse kept (``keep_extra_links``) come back verbatim.
        Online, ``owner_key`` (the table's primary key) and ``referent_table``/``referent_key``
        (the column's foreign key) are reflected; offline they must be given.
        """
        op = cls(
            table,
            column,
            junction=junction,
            owner_column=owner_column,
            referent_column=referent_column,
            referent_table=referent_table,
            referent_key=referent_key,
            unique_name=unique_name,
            ondelete=ondelete,
            index=index,
            owner_key=owner_key,
            schema=schema,
        )
        result: OpResult = operations.invoke(op)
        return result

    def reverse(self) -> CollapseJunctionToFkOp:
        """Collapse the junction back into the column (its definition comes from the record)."""
        return CollapseJunctionToFkOp(
            self.junction,
            table=self.table,
            column=self.column,
            owner_column=self.owner_column,
            referent_column=self.referent_column,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            unique_name=self.unique_name,
            junction_ondelete=self.ondelete,
            index=self.index,
            owner_key=self.owner_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        return (
            f"Promote {self.table}.{self.column} to junction {self.junction}"
            f"({self.owner_column}, {self.referent_column})"
        )

    def shape(self, owner_key: str) -> JunctionShape:
        return JunctionShape(
            name=self.junction,
            owner_table=self.table,
            column=self.column,
            owner_column=self.owner_column,
            referent_column=self.referent_column,
            owner_key=owner_key,
            unique_name=self.unique_name,
            ondelete=self.ondelete,
            index=self.index,
            schema=self.schema,
        )


@Operations.register_operation("collapse_junction_to_fk")
class CollapseJunctionToFkOp(MigrateOperation):
    """Put the first link per owner of ``junction`` back into FK column ``table.column``.

    Attributes left ``None`` are resolved at run time (recorded definition, reflection).
    """

    def __init__(
        self,
        junction: str,
        *,
        table: str,
        column: str,
        owner_column: str,
        referent_column: str,
        referent_table: str | None = None,
        referent_key: str | None = None,
        order_by: tuple[str, ...] = DEFAULT_ORDER,
        type_: Any = None,
        nullable: bool | None = None,
        fk_name: str | None = None,
        ondelete: str | None = None,
        on_missing: str = "refuse",
        fill_value: str | None = None,
        keep_extra_links: bool = False,
        unique_name: str | None = None,
        junction_ondelete: str | None = "CASCADE",
        index: bool = True,
        owner_key: str | None = None,
        schema: str | None = None,
    ) -> None:
        self.junction = junction
        self.table = table
        self.column = column
        self.owner_column = owner_column
        self.referent_column = referent_column
        self.referent_table = referent_table
        self.referent_key = referent_key
        self.order_by = tuple(order_by)
        self.type_ = type_
        self.nullable = nullable
        self.fk_name = fk_name
        self.ondelete = ondelete
        self.policy = MissingPolicy(on_missing, fill_value)
        self.keep_extra_links = keep_extra_links
        self.unique_name = unique_name
        self.junction_ondelete = junction_ondelete
        self.index = index
        self.owner_key = owner_key
        self.schema = schema

    @classmethod
    def collapse_junction_to_fk(
        cls,
        operations: Operations,
        junction: str,
        *,
        table: str,
        column: str,
        owner_column: str,
        referent_column: str,
        referent_table: str,
        referent_key: str = "id",
        order_by: tuple[str, ...] = DEFAULT_ORDER,
        type_: Any = "uuid",
        nullable: bool = True,
        fk_name: str | None = None,
        ondelete: str | None = None,
        on_missing: str = "refuse",
        fill_value: str | None = None,
        keep_extra_links: bool = False,
        unique_name: str | None = None,
        junction_ondelete: str | None = "CASCADE",
        index: bool = True,
        owner_key: str | None = None,
        schema: str | None = None,
    ) -> OpResult:
        """Re-add ``table.column`` set to each owner's first link, then drop the junction.

        The first link is the first in ``order_by`` order (junction columns; ``-name`` for
        descending; the referent breaks remaining ties), never an arbitrary pick. The column
        gets type ``type_``, its foreign key ``fk_name`` (default ``<table>_<column>_fkey``)
        to ``referent_table(referent_key)`` ``ON DELETE ondelete``, and NOT NULL unless
        ``nullable``. Owners with several links keep only the first: the others are counted
        as ``lost``, or with ``keep_extra_links`` kept in the toolkit's stash so that a
        later ``promote_fk_to_junction`` re-inserts them verbatim. Owners with no link
        while NOT NULL: ``on_missing="refuse"`` (default) raises before any change;
        ``"keep_null"`` leaves them NULL and the column nullable; ``"fill"`` sets
        ``fill_value``. ``unique_name``, ``junction_ondelete`` and ``index`` describe the
        junction for ``reverse()``. ``owner_key`` (the table's primary key) is reflected
        online and required offline.
        """
        op = cls(
            junction,
            table=table,
            column=column,
            owner_column=owner_column,
            referent_column=referent_column,
            referent_table=referent_table,
            referent_key=referent_key,
            order_by=order_by,
            type_=type_,
            nullable=nullable,
            fk_name=fk_name,
            ondelete=ondelete,
            on_missing=on_missing,
            fill_value=fill_value,
            keep_extra_links=keep_extra_links,
            unique_name=unique_name,
            junction_ondelete=junction_ondelete,
            index=index,
            owner_key=owner_key,
            schema=schema,
        )
        result: OpResult = operations.invoke(op)
        return result

    def reverse(self) -> PromoteFkToJunctionOp:
        """Promote the column back into the junction."""
        return PromoteFkToJunctionOp(
            self.table,
            self.column,
            junction=self.junction,
            owner_column=self.owner_column,
            referent_column=self.referent_column,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            unique_name=self.unique_name,
            ondelete=self.junction_ondelete,
            index=self.index,
            owner_key=self.owner_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        order = ", ".join(self.order_by)
        return (
            f"Collapse junction {self.junction} into {self.table}.{self.column}"
            f" (first link by {order})"
        )

    def shape(self, owner_key: str) -> JunctionShape:
        return JunctionShape(
            name=self.junction,
            owner_table=self.table,
            column=self.column,
            owner_column=self.owner_column,
            referent_column=self.referent_column,
            owner_key=owner_key,
            unique_name=self.unique_name,
            ondelete=self.junction_ondelete,
            index=self.index,
            schema=self.schema,
        )


@Operations.implementation_for(PromoteFkToJunctionOp)
def promote_fk_to_junction(operations: Operations, op: PromoteFkToJunctionOp) -> OpResult:
    """Implementation of ``op.promote_fk_to_junction`` (see the operation's docstring)."""
    runner = Runner(operations, "promote_fk_to_junction")
    where = f"{op.table}.{op.column}"
    runner.require_online_args(
        where,
        owner_key=op.owner_key,
        referent_table=op.referent_table,
        referent_key=op.referent_key,
    )
    owner_key = op.owner_key
    referent: ForeignKeySpec | None = None
    guaranteed = False  # a validated FK already proves every value has its referent
    kept = 0
    if op.referent_table is not None:
        referent = ForeignKeySpec(
            op.referent_table, (op.referent_key,) if op.referent_key else (), op.schema
        )
    if not runner.offline:
        owner_key = owner_key or reflect.single_key(runner, op.table, op.schema)
        reflect.existing_column(runner, op.table, op.column, op.schema)
        if reflect.table_exists(runner, op.junction, op.schema):
            raise UsageError(f"promote_fk_to_junction: table {op.junction} already exists")
        current = reflect.foreign_keys(runner, op.table, op.column, op.schema)
        referent = referent or reflect.single_foreign_key(runner, op.table, op.column, op.schema)
        if referent is None:
            raise UsageError(
                f"promote_fk_to_junction: {where} has no single foreign key to follow;"
                " pass referent_table= and referent_key="
            )
        referent = reflect.with_referent_key(runner, referent)
        guaranteed = any(
            fk.validated
            and fk.spec.referent_table == referent.referent_table
            and fk.spec.referent_columns == referent.referent_columns
            for fk in current
        )
        kept = reflect.stash_count(runner, "link", op.table, op.column, op.schema)
    assert owner_key is not None and referent is not None
    referent_key = referent.referent_columns[0]
    referent = replace(referent, ondelete=op.ondelete, onupdate=None)
    owner = ForeignKeySpec(op.table, (owner_key,), op.schema, ondelete=op.ondelete)
    shape = op.shape(owner_key)
    use_kept = runner.offline or kept > 0
    constraints = shape.constrain(owner, referent)  # built first: bad names fail before changes

    runner.run(ddl.lock_tables([op.table], op.schema))
    if not guaranteed:
        orphans = Check(
            op.table,
            op.column,
            f"point to no row of {referent.referent_table}",
            missing_referent(
                column_of("t", op.column),
                referent.referent_table,
                referent_key,
                referent.referent_schema,
            ),
            "fix or clear those values first",
        )
        runner.check(
            CheckSet(table_as_t(op.table, op.schema), key_text("t", (owner_key,)), (orphans,))
        )
    runner.run(shape.create_bare())
    runner.run(shape.shape_columns())
    restored = 0
    if use_kept:
        runner.run(ensure_stash(op.schema))
        restored = runner.run(shape.load_kept_links(referent, referent_key))
    moved = runner.run(shape.load_from_column(skip_kept=use_kept))
    if use_kept:
        runner.run(forget("link", op.table, op.column, schema=op.schema))
    runner.run_all(constraints)
    dropped_fks = record_and_drop(runner, op.table, op.column, schema=op.schema)
    notes = [f"dropped foreign key {name}" for name in dropped_fks]
    counts = {"moved": moved}
    if kept:
        counts["restored"] = restored
        if kept > restored:
            counts["dropped"] = kept - restored
            notes.append(
                f"{kept - restored} kept link(s) discarded: their owner's {op.column} changed"
                " or their referent is gone"
            )
    return runner.result(op.table, op.column, counts, notes)


@Operations.implementation_for(CollapseJunctionToFkOp)
def collapse_junction_to_fk(operations: Operations, op: CollapseJunctionToFkOp) -> OpResult:
    """Implementation of ``op.collapse_junction_to_fk`` (see the operation's docstring)."""
    runner = Runner(operations, "collapse_junction_to_fk")
    where = f"{op.table}.{op.column}"
    runner.require_online_args(where, owner_key=op.owner_key)
    owner_key = op.owner_key
    if not runner.offline:
        if not reflect.table_exists(runner, op.junction, op.schema):
            raise UsageError(f"collapse_junction_to_fk: table {op.junction} does not exist")
        if reflect.column(runner, op.table, op.column, op.schema) is not None:
            raise UsageError(f"collapse_junction_to_fk: column {where} already exists")
        owner_key = owner_key or reflect.single_key(runner, op.table, op.schema)
    assert owner_key is not None
    shape = op.shape(owner_key)

    def junction_type() -> str | None:
        found = reflect.column(runner, op.junction, op.referent_column, op.schema)
        return found.type_text if found else None

    def junction_fk() -> NamedForeignKey | None:
        spec = reflect.single_foreign_key(runner, op.junction, op.referent_column, op.schema)
        if spec is None:
            return None
        name = op.fk_name or default_fk_name(op.table, op.column)
        return (name, replace(spec, ondelete=op.ondelete, onupdate=None))

    explicit: NamedForeignKey | None = None
    if op.referent_table is not None:
        explicit = (
            op.fk_name or default_fk_name(op.table, op.column),
            ForeignKeySpec(
                op.referent_table, (op.referent_key or "id",), op.schema, ondelete=op.ondelete
            ),
        )
    plan = resolve_plan(
        runner,
        op.table,
        op.column,
        schema=op.schema,
        type_text=type_sql(op.type_) if op.type_ is not None else None,
        nullable=op.nullable,
        foreign_key=explicit,
        fallback_type=junction_type,
        fallback_fk=junction_fk,
    )
    runner.run(ddl.lock_tables([op.table, op.junction], op.schema))
    checks = op.policy.refusal(
        op.table,
        op.column,
        shape.owners_without_link(),
        f"have no link in {op.junction} and {op.column} is NOT NULL",
        applies=not plan.nullable,
    )
    runner.check(
        CheckSet(table_as_t(op.table, op.schema), key_text("t", (owner_key,)), tuple(checks))
    )
    runner.check(op.policy.fill_checks(op.table, op.column, plan.type_text, plan.referents()))

    notes: list[str] = []
    counts: dict[str, int] = {}
    if op.keep_extra_links:
        runner.run(ensure_stash(op.schema))
        runner.run(forget("link", op.table, op.column, schema=op.schema))
        runner.run(shape.keep_links(op.order_by))
        runner.run(analyze_stash(op.schema))  # the next promote joins the owners with it
    runner.run(plan.add())
    collapsed = runner.run(shape.set_first_links(op.order_by))
    counts["collapsed"] = collapsed
    if not runner.offline:
        links = int(runner.scalar(shape.count_links()))
        extra = links - collapsed
        if op.keep_extra_links:
            # The stash also holds each owner's first link (see keep_links): not counted.
            kept = int(runner.scalar(shape.count_kept_extras()))
            counts["stashed"] = kept
            counts["lost"] = 0
            if kept:
                notes.append(f"{kept} extra link(s) kept in the stash")
        else:
            counts["lost"] = extra
            if extra:
                notes.append(f"{extra} link(s) beyond the first per {op.table} row lost (declared)")
    policy_counts, policy_notes = finish_column(runner, plan, op.policy)
    counts.update(policy_counts)
    notes += policy_notes
    runner.run(ddl.drop_table(op.junction, schema=op.schema))
    forget_recorded(runner, op.table, op.column, schema=op.schema)
    return runner.result(op.junction, op.referent_column, counts, notes)
