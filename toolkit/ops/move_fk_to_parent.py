"""``move_fk_to_parent``: an FK column of children moves up to their parent (first child).

Inverse of ``move_fk_to_child``: each parent takes its first child's value in an explicit
order, else its stash; children that disagreed with that choice are the declared loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import reflect
from toolkit.ops.base import (
    FROM_RECORD,
    FromRecord,
    LosslessOperation,
    Plan,
    given,
    jsonb_key_name,
    lossless_operation,
    name_of,
)
from toolkit.ops.columns import (
    ColumnPlan,
    NamedForeignKey,
    default_fk_name,
    foreign_key_names,
    forget_recorded,
    record_carried_and_drop,
    resolve_column,
)
from toolkit.ops.family import explicit_referent, family_of, fk_args_of, parent_key_of
from toolkit.ops.jsonb_slot import (
    DEFAULT_JSONB,
    check_jsonb_column,
    legacy_key,
    orphan_checks,
    restore_steps,
    stash_state,
)
from toolkit.ops.move_up_online import up_online_steps
from toolkit.ops.policies import MissingPolicy
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import CheckedByForeignKeys, Measure, OnlineSteps, Run, Step, TableLock
from toolkit.sql.checks import CheckSet, key_text
from toolkit.sql.family import Family
from toolkit.sql.idents import type_sql
from toolkit.sql.jsonb_slot import JsonbSlot


@lossless_operation("move_fk_to_parent")
@dataclass(frozen=True)
class MoveFkToParentOp(LosslessOperation):
    """Give every ``parent`` row its first child's ``column`` value, then drop it from
    ``child``.

    First = first in ``order_by`` order (child columns; default ``("created_at",
    <child primary key>)``). Parents without children take the value stashed under
    ``key`` in ``jsonb_column`` (the key is removed exactly; a JSONB that was NULL
    becomes NULL again). Children whose value differs from their parent's chosen one
    are the declared loss (``lost``). ``parent.parent_column`` gets the recorded type
    (else the child column's), foreign keys (else ``fk_name``, default
    ``<parent>_<parent_column>_fkey``, to the child's referent or ``referent_table``, with
    the options ``ondelete``, ``onupdate``, ``deferrable``, ``initially``, ``match``) and
    nullability (``FROM_RECORD``; NOT NULL without a record); an argument contradicting
    the record is refused before any change; parents with
    neither a child nor a stash follow ``on_missing`` (``"refuse"`` before any change,
    ``"keep_null"``, ``"fill"``). ``parent_key`` and ``child_key`` are reflected online;
    offline ``type_``, ``parent_key`` and (for the default order) ``child_key`` are
    required.
    """

    child: str
    column: str
    _: KW_ONLY
    parent: str
    child_fk: str
    order_by: tuple[str, ...] | None = None
    parent_column: str | None = None
    fk_name: str | None = None
    nullable: bool | FromRecord = FROM_RECORD
    jsonb_column: str = DEFAULT_JSONB
    key: str | None = None
    referent_table: str | None = None
    referent_key: str | None = None
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool | None = None
    initially: str | None = None
    match: str | None = None
    on_missing: str = "refuse"
    fill_value: str | None = None
    type_: Any = FROM_RECORD
    parent_key: str | None = None
    child_key: str | None = None
    schema: str | None = None
    online: bool | None = None

    def __post_init__(self) -> None:
        if self.order_by is not None:
            object.__setattr__(self, "order_by", tuple(self.order_by))
        self.policy  # noqa: B018  (a bad policy is a usage error when the op is built)
        fk_args_of(self)  # so is a bad foreign-key option

    @property
    def policy(self) -> MissingPolicy:
        return MissingPolicy(self.on_missing, self.fill_value)

    @property
    def new_column(self) -> str:
        return self.parent_column or self.column

    @property
    def stash_key(self) -> str:
        return self.key or legacy_key(self.new_column)

    def progress_key(self) -> tuple[str, str, str | None]:
        """Online mode's progress row: the parent's new column (its batches go by parent)."""
        return self.parent, self.new_column, self.schema

    def reverse(self) -> LosslessOperation:
        """Move the column back down to the children."""
        from toolkit.ops.move_fk_to_child import MoveFkToChildOp

        return MoveFkToChildOp(
            self.parent,
            self.new_column,
            child=self.child,
            child_fk=self.child_fk,
            child_column=self.column,
            nullable=self.nullable is not FROM_RECORD and bool(self.nullable),
            jsonb_column=self.jsonb_column,
            key=self.stash_key,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            ondelete=self.ondelete,
            onupdate=self.onupdate,
            deferrable=self.deferrable,
            initially=self.initially,
            match=self.match,
            type_=given(self.type_),
            parent_key=self.parent_key,
            order_by=self.order_by,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        order = ", ".join(self.order_by) if self.order_by else "created_at, key"
        return (
            f"Move {self.child}.{self.column} up to {self.parent}.{self.new_column}"
            f" (first child by {order}, else {self.jsonb_column}[{self.stash_key!r}])"
        )

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """What it reads and changes (see ``LosslessOperation.footprint``)."""
        schema = self.schema
        changes = {
            name_of(schema, self.child, self.column),
            name_of(schema, self.parent, self.new_column),
            jsonb_key_name(schema, self.parent, self.jsonb_column, self.stash_key),
        }
        reads = changes | {name_of(schema, self.child, self.child_fk)}
        return frozenset(reads), frozenset(changes)

    def resolve(self, runner: Runner) -> ToParentPlan:
        """Parent key, order and the parent column's definition."""
        runner.require_online_args(
            f"{self.parent}.{self.new_column}",
            parent_key=self.parent_key,
            child_key=self.child_key if self.order_by is None else "",
        )
        parent_key, order_by = self.parent_key, self.order_by
        if not runner.offline:
            parent_key, order_by = self._reflect(runner)
        if order_by is None:
            order_by = ("created_at", str(self.child_key))
        assert parent_key is not None
        return ToParentPlan(
            self.name,
            runner.offline,
            self.child,
            self.column,
            family=family_of(self, parent_key),
            slot=JsonbSlot(
                self.parent,
                self.new_column,
                self.jsonb_column,
                self.stash_key,
                (parent_key,),
                self.schema,
            ),
            target=self._target(runner),
            policy=self.policy,
            order_by=order_by,
            stash=stash_state(runner, self.schema),
            fk_names=foreign_key_names(runner, self.child, self.column, self.schema),
        )

    def _reflect(self, runner: Runner) -> tuple[str, tuple[str, ...]]:
        """Online: the parent key and the order (default: created_at, the child's key)."""
        parent_key = parent_key_of(runner, self, self.parent_key)
        reflect.existing_column(runner, self.child, self.column, self.schema)
        check_jsonb_column(runner, self.parent, self.jsonb_column, self.schema)
        resuming = reflect.online_run_under_way(runner, self.parent, self.new_column, self.schema)
        if reflect.column(runner, self.parent, self.new_column, self.schema) and not resuming:
            where = f"{self.parent}.{self.new_column}"
            raise UsageError(f"move_fk_to_parent: column {where} already exists")
        order_by = self.order_by
        if order_by is None:
            child_key = self.child_key or reflect.single_key(runner, self.child, self.schema)
            order_by = ("created_at", child_key)
        return parent_key, order_by

    def _target(self, runner: Runner) -> ColumnPlan:
        """How the parent's column comes back (see ``toolkit.ops.columns``)."""

        def child_type() -> str | None:
            found = reflect.column(runner, self.child, self.column, self.schema)
            return found.type_text if found else None

        def child_fk() -> NamedForeignKey | None:
            spec = reflect.single_foreign_key(runner, self.child, self.column, self.schema)
            if spec is None:
                return None
            return self._fk_name(), fk_args_of(self).override(spec)

        explicit: NamedForeignKey | None = None
        spec = explicit_referent(self)
        if spec is not None:
            explicit = (self._fk_name(), reflect.with_referent_key(runner, spec))
        return resolve_column(
            runner,
            self.parent,
            self.new_column,
            schema=self.schema,
            type_text=type_sql(self.type_) if given(self.type_) is not None else None,
            nullable=given(self.nullable),
            foreign_key=explicit,
            fk_args=fk_args_of(self),
            nullable_default=False,
            fallback_type=child_type,
            fallback_fk=child_fk,
        )

    def _fk_name(self) -> str:
        return self.fk_name or default_fk_name(self.parent, self.new_column)


@dataclass(frozen=True, kw_only=True)
class ToParentPlan(Plan):
    """A resolved ``move_fk_to_parent`` (``table.column``: the child's column)."""

    family: Family
    slot: JsonbSlot
    target: ColumnPlan
    policy: MissingPolicy
    order_by: tuple[str, ...]
    stash: bool | None
    fk_names: tuple[str, ...]

    def dropped_references(self) -> list[tuple[str | None, str]]:
        return self.target.referenced_tables()

    def locks(self) -> list[TableLock]:
        family = self.family
        return [TableLock(family.schema, family.parent), TableLock(family.schema, family.child)]

    def _source(self, found: tuple[Any, ...]) -> CheckSet:
        return CheckSet(self.slot.source, key_text("t", (self.family.parent_key,)), found)

    def checks(self) -> list[CheckSet]:
        target, slot, family = self.target, self.slot, self.family
        missing = self.policy.refusal(
            "not-null-without-child-or-stash",
            target.table,
            target.column,
            sql.SQL("{} AND NOT {}").format(family.childless("t"), slot.holds_key),
            applies=not target.nullable,
            child=family.child,
            key=slot.key,
            jsonb_column=slot.jsonb_column,
        )
        fill = self.policy.fill_checks(
            target.table, target.column, target.type_text, target.referents()
        )
        return [self._source(tuple(missing)), fill]

    def steps(self) -> list[Step]:
        target, slot, family = self.target, self.slot, self.family
        orphans = orphan_checks(slot, target.type_text, target.referents(), family.childless("t"))
        copy_up = family.copy_up_first(self.column, target.column, self.order_by)
        restore = restore_steps(
            slot, target.type_text, stash=self.stash, keep_existing=True, tally=None
        )
        filled: tuple[Step, ...] = (
            Run(target.add()),
            Run(copy_up, "moved"),
            Measure(family.disagreeing_children(self.column, target.column), "disagree"),
            Measure(slot.overridden_count(target.type_text), "overridden"),
            Measure(slot.pending_count(), "restored"),
            *restore,
            *target.finish_steps(self.policy, offline=self.offline),
        )
        drop = record_carried_and_drop(self.table, self.column, self.fk_names, schema=family.schema)
        forget = forget_recorded(
            target.table, target.column, schema=family.schema, stash=self.stash
        )
        return [CheckedByForeignKeys(self._source(orphans), filled), *drop, *forget]

    def online_steps(self) -> OnlineSteps:
        return up_online_steps(self)

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        disagree, overridden = tallies.get("disagree", 0), tallies.get("overridden", 0)
        counts = {"moved": tallies.get("moved", 0), "lost": disagree + overridden}
        counts["restored"] = tallies.get("restored", 0)
        notes: list[str] = []
        if disagree:
            notes.append(
                f"{disagree} {self.family.child} row(s) had another {self.column} than their"
                f" parent's first (by {', '.join(self.order_by)}): lost (declared)"
            )
        if overridden:
            notes.append(
                f"{overridden} stashed {self.slot.key!r} value(s) overridden by a child's"
                " value: lost"
            )
        finish_counts, finish_notes = self.target.finish_report(self.policy, tallies)
        counts.update(finish_counts)
        notes += finish_notes
        notes += [f"dropped foreign key {name}" for name in self.fk_names]
        return counts, notes
