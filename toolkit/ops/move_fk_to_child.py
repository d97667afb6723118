"""``move_fk_to_child``: an FK column of a parent moves down to its child rows.

Each child gets its parent's value; the value of parents without children is stashed in
the parent's JSONB. Inverse: ``move_fk_to_parent``.
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
    LosslessOperation,
    Plan,
    jsonb_key_name,
    lossless_operation,
    name_of,
)
from toolkit.ops.columns import (
    default_fk_name,
    foreign_key_names,
    record_and_drop,
    replay_carried,
)
from toolkit.ops.family import explicit_referent, family_of, fk_args_of, parent_key_of
from toolkit.ops.jsonb_slot import (
    DEFAULT_JSONB,
    check_jsonb_column,
    legacy_key,
    restore_steps,
    stash_checks,
    stash_prelude,
    stash_steps,
)
from toolkit.ops.refusals import refusal, value_without_referent
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import Measure, NotNull, OnlineSteps, Run, Step, TableLock, runs
from toolkit.sql import ddl
from toolkit.sql.checks import CheckSet, key_text
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.family import Family
from toolkit.sql.family_online import DownMirror
from toolkit.sql.idents import Sql, column_of, ident, table_as_t, type_sql
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.online import create_mirror, drop_mirror


@lossless_operation("move_fk_to_child")
@dataclass(frozen=True)
class MoveFkToChildOp(LosslessOperation):
    """Give every ``child`` row its parent's ``column`` value, then drop it from ``parent``.

    ``child.child_column`` (default: same name) is added with the parent column's type,
    filled through ``child.child_fk -> parent``, made NOT NULL unless ``nullable``, and
    given a foreign key ``fk_name`` (default ``<child>_<child_column>_fkey``) to the
    parent column's referent (same options; ``ondelete``, ``onupdate``, ``deferrable``,
    ``initially`` and ``match`` override them). The value of parents
    without children goes into ``parent.jsonb_column`` under ``key`` (default
    ``legacy_<column>``), exactly as ``stash_column_in_jsonb`` does; then the parent's
    foreign keys (looked up) and column are dropped. Refuses, before any change, a JSONB
    that cannot take the key, a key already present, (NOT NULL) children whose parent
    has no value and children without a parent, and values without referent that a
    ``NOT VALID`` foreign key let in. ``type_``, ``parent_key`` and ``referent_table``
    are reflected online and required offline. ``order_by`` is the order ``reverse()``
    picks each parent's first child by (default ``created_at``, then the child's key).
    """

    parent: str
    column: str
    _: KW_ONLY
    child: str
    child_fk: str
    child_column: str | None = None
    fk_name: str | None = None
    nullable: bool = False
    jsonb_column: str = DEFAULT_JSONB
    key: str | None = None
    referent_table: str | None = None
    referent_key: str | None = None
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool | None = None
    initially: str | None = None
    match: str | None = None
    type_: Any = None
    parent_key: str | None = None
    order_by: tuple[str, ...] | None = None
    schema: str | None = None
    online: bool | None = None

    @property
    def new_column(self) -> str:
        return self.child_column or self.column

    def progress_key(self) -> tuple[str, str, str | None]:
        """Online mode's progress row: the parent's column (its batches go by parent)."""
        return self.parent, self.column, self.schema

    @property
    def stash_key(self) -> str:
        return self.key or legacy_key(self.column)

    def reverse(self) -> LosslessOperation:
        """Move the column back up (first child by ``order_by``, default created_at + key)."""
        from toolkit.ops.move_fk_to_parent import MoveFkToParentOp

        return MoveFkToParentOp(
            self.child,
            self.new_column,
            parent=self.parent,
            child_fk=self.child_fk,
            order_by=self.order_by,
            parent_column=self.column,
            nullable=FROM_RECORD,
            jsonb_column=self.jsonb_column,
            key=self.stash_key,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            **self._reverse_fk_args(),
            type_=self.type_ if self.type_ is not None else FROM_RECORD,
            parent_key=self.parent_key,
            schema=self.schema,
        )

    def _reverse_fk_args(self) -> dict[str, Any]:
        """The foreign key's options for ``reverse()``: online (no ``referent_table``)
        they are overrides of the child's key only, and the parent's come from the record."""
        if self.referent_table is None:
            return {}
        names = ("ondelete", "onupdate", "deferrable", "initially", "match")
        return {name: getattr(self, name) for name in names}

    def describe(self) -> str:
        """One line for logs and reports."""
        return (
            f"Move {self.parent}.{self.column} down to {self.child}.{self.new_column}"
            f" (via {self.child}.{self.child_fk}; childless parents kept in"
            f" {self.jsonb_column}[{self.stash_key!r}])"
        )

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """What it reads and changes (see ``LosslessOperation.footprint``)."""
        schema = self.schema
        changes = {
            name_of(schema, self.parent, self.column),
            name_of(schema, self.child, self.new_column),
            jsonb_key_name(schema, self.parent, self.jsonb_column, self.stash_key),
        }
        reads = changes | {name_of(schema, self.child, self.child_fk)}
        return frozenset(reads), frozenset(changes)

    def resolve(self, runner: Runner) -> ToChildPlan:
        """Type, parent key and referent: given, else reflected (online)."""
        runner.require_online_args(
            f"{self.parent}.{self.column}",
            type_=self.type_,
            parent_key=self.parent_key,
            referent_table=self.referent_table,
        )
        type_text = type_sql(self.type_) if self.type_ is not None else None
        referent, parent_key = explicit_referent(self), self.parent_key
        child_key: tuple[str, ...] | None
        guaranteed, child_key = False, ("ctid",)  # offline: checked, rows named by ctid
        if not runner.offline:
            parent_key, type_text, referent = self._reflect(runner, type_text, referent)
            guaranteed, child_key = self._known_facts(runner, referent, parent_key)
        assert parent_key is not None and type_text is not None
        fk_name = self.fk_name or default_fk_name(self.child, self.new_column)
        ident(fk_name)  # a name PostgreSQL would truncate fails before any change
        return ToChildPlan(
            self.name,
            runner.offline,
            self.parent,
            self.column,
            family=family_of(self, parent_key),
            slot=JsonbSlot(
                self.parent,
                self.column,
                self.jsonb_column,
                self.stash_key,
                (parent_key,),
                self.schema,
            ),
            child_column=self.new_column,
            type_text=type_text,
            nullable=self.nullable,
            referent=referent,
            fk_name=fk_name,
            fk_names=foreign_key_names(runner, self.parent, self.column, self.schema),
            guaranteed=guaranteed,
            child_key=child_key,
            child_recorded=not runner.offline
            and reflect.recorded(runner, self.child, self.new_column, self.schema) is not None,
        )

    def _reflect(
        self, runner: Runner, type_text: str | None, referent: ForeignKeySpec | None
    ) -> tuple[str, str, ForeignKeySpec | None]:
        """Online: the parent key, the column's type and its foreign key."""
        parent_key = parent_key_of(runner, self, self.parent_key)
        found = reflect.existing_column(runner, self.parent, self.column, self.schema)
        check_jsonb_column(runner, self.parent, self.jsonb_column, self.schema)
        if reflect.column(
            runner, self.child, self.new_column, self.schema
        ) is not None and not reflect.online_run_under_way(
            runner, self.parent, self.column, self.schema
        ):
            raise UsageError(f"move_fk_to_child: column {self.child}.{self.new_column} exists")
        if referent is None:
            spec = reflect.single_foreign_key(runner, self.parent, self.column, self.schema)
            referent = fk_args_of(self).override(spec) if spec is not None else None
        if referent is not None:
            referent = reflect.with_referent_key(runner, referent)
        return parent_key, type_text or found.type_text, referent

    def _known_facts(
        self, runner: Runner, referent: ForeignKeySpec | None, parent_key: str
    ) -> tuple[bool, tuple[str, ...] | None]:
        """Online: whether a validated foreign key already proves the parent's values have
        their referent, and the child's key (its rows' names in a refusal; else ``ctid``),
        None when a NOT NULL ``child_fk`` under a validated key proves every child has a
        parent (the check would cost a scan for nothing)."""
        schema = self.schema
        current = reflect.foreign_keys(runner, self.parent, self.column, schema)
        guaranteed = referent is None or reflect.validated_by(runner, current, referent)
        link = reflect.existing_column(runner, self.child, self.child_fk, schema)
        to_parent = ForeignKeySpec(self.parent, (parent_key,))
        links = reflect.foreign_keys(runner, self.child, self.child_fk, schema)
        if not link.nullable and reflect.validated_by(runner, links, to_parent):
            return guaranteed, None
        return guaranteed, reflect.primary_key_or_ctid(runner, self.child, schema)


@dataclass(frozen=True, kw_only=True)
class ToChildPlan(Plan):
    """A resolved ``move_fk_to_child``."""

    family: Family
    slot: JsonbSlot
    child_column: str
    type_text: str
    nullable: bool
    referent: ForeignKeySpec | None
    fk_name: str
    fk_names: tuple[str, ...]
    #: a validated foreign key proves the values have their referent (online)
    guaranteed: bool
    #: the child's key, naming its rows in a refusal (offline ``ctid``); None when every
    #: child is known to have a parent
    child_key: tuple[str, ...] | None
    #: a move_fk_to_parent recorded the child's column with objects of its own (online)
    child_recorded: bool = False

    def dropped_columns(self) -> list[tuple[str | None, str, str]]:
        return [(self.family.schema, self.table, self.column)]

    def dropped_references(self) -> list[tuple[str | None, str]]:
        ref = self.referent
        return [] if ref is None else [(ref.referent_schema, ref.referent_table)]

    def locks(self) -> list[TableLock]:
        family = self.family
        return [TableLock(family.schema, family.parent), TableLock(family.schema, family.child)]

    def checks(self) -> list[CheckSet]:
        family = self.family
        found = stash_checks(self.slot, row_filter=family.childless("t"))
        if not self.nullable:
            condition = sql.SQL("{} IS NULL AND {}").format(
                column_of("t", self.column), family.has_children("t")
            )
            found.append(
                refusal(
                    "children-of-parent-without-value",
                    self.table,
                    self.column,
                    condition,
                    child=family.child,
                    child_column=self.child_column,
                )
            )
        if self.referent is not None and not self.guaranteed:
            # A NOT VALID key lets values without referent in; the child's key would not.
            found.append(
                value_without_referent(
                    self.table, self.column, self.referent, family.has_children("t")
                )
            )
        parents = CheckSet(self.slot.source, key_text("t", (family.parent_key,)), tuple(found))
        return [parents, *self._children_checks()]

    def _children_checks(self) -> list[CheckSet]:
        """NOT NULL: every child must have a parent to take the value from."""
        family = self.family
        if self.nullable or self.child_key is None:
            return []
        orphans = refusal(
            "child-without-parent",
            family.child,
            family.child_fk,
            family.without_parent("t"),
            parent=family.parent,
            parent_key=family.parent_key,
            child_column=f"{family.child}.{self.child_column}",
        )
        source = table_as_t(family.child, family.schema)
        return [CheckSet(source, key_text("t", self.child_key), (orphans,))]

    def steps(self) -> list[Step]:
        family, schema, child = self.family, self.family.schema, self.family.child
        steps: list[Step] = [
            Run(ddl.add_column(child, self.child_column, self.type_text, schema=schema)),
            Run(family.copy_down(self.column, self.child_column), "moved"),
            *stash_steps(self.slot, family.childless("t")),
        ]
        if not self.nullable:
            steps.append(Run(ddl.set_not_null(child, self.child_column, schema=schema)))
        if self.referent is not None:
            fk = ddl.add_foreign_key(
                child, [self.child_column], self.fk_name, self.referent, schema=schema
            )
            steps.append(Run(fk))
        steps += replay_carried(child, self.child_column, self.type_text, schema=schema)
        return steps + record_and_drop(self.table, self.column, self.fk_names, schema=schema)

    @property
    def mirror(self) -> DownMirror:
        return DownMirror(self.family, self.slot, self.child_column)

    def _foreign_key(self) -> list[tuple[str, str, Sql]]:
        if self.referent is None:
            return []
        child, schema = self.family.child, self.family.schema
        fk = ddl.add_foreign_key(
            child, [self.child_column], self.fk_name, self.referent, schema=schema
        )
        return [(child, self.fk_name, fk)]

    def _mirrors(self, *, drop: bool) -> list[Sql]:
        """The three mirror triggers (see ``toolkit.sql.family_online``), or their drops."""
        family, mirror, schema = self.family, self.mirror, self.family.schema
        triggers = [
            (
                family.child,
                self.child_column,
                "BEFORE",
                ("INSERT", "UPDATE"),
                (family.child_fk,),
                mirror.child_value_body(),
            ),
            (
                family.child,
                family.child_fk,
                "AFTER",
                ("INSERT", "UPDATE", "DELETE"),
                (family.child_fk,),
                mirror.child_parents_body(),
            ),
            (
                family.parent,
                self.column,
                "BEFORE",
                ("INSERT", "UPDATE"),
                (self.column, self.slot.jsonb_column),
                mirror.parent_body(),
            ),
        ]
        out: list[Sql] = []
        for table, column, timing, events, columns, body in triggers:
            if drop:
                out += drop_mirror(table, column, schema=schema)
            else:
                out += create_mirror(
                    table,
                    column,
                    schema=schema,
                    timing=timing,
                    events=events,
                    columns=columns,
                    body=body,
                )
        return out

    def _refuse_online_replay(self) -> None:
        """Online mode cannot build a recorded child column's indexes under short locks."""
        if self.child_recorded:
            raise UsageError(
                f"{self.operation}: {self.family.child}.{self.child_column} was recorded with"
                " objects of its own (indexes, constraints, comment, grants...) when a"
                " move_fk_to_parent dropped it; online mode cannot re-create them without long"
                " locks: run this operation without online mode"
            )

    def online_steps(self) -> OnlineSteps:
        self._refuse_online_replay()
        family, schema, child = self.family, self.family.schema, self.family.child
        parent = TableLock(schema, family.parent, "ACCESS EXCLUSIVE")
        referents = [TableLock(s, t) for s, t in self.dropped_references()]
        not_null = (
            ()
            if self.nullable
            else (
                NotNull(
                    child,
                    self.child_column,
                    ddl.set_not_null(child, self.child_column, schema=schema),
                ),
            )
        )
        drop_mirrors = runs(self._mirrors(drop=True))
        return OnlineSteps(
            table=self.table,
            column=self.column,
            schema=schema,
            keys=(family.parent_key,),
            expand_locks=(
                TableLock(schema, family.parent),
                TableLock(schema, child, "ACCESS EXCLUSIVE"),
            ),
            # The prelude reads the whole parent table: before the expand, which locks it.
            prepare=tuple(stash_prelude(self.slot)),
            expand=(
                Run(ddl.add_column(child, self.child_column, self.type_text, schema=schema)),
                Run(self.slot.register_key()),
                *runs(self._mirrors(drop=False)),
            ),
            batch=self._batch,
            constraints=tuple(self._foreign_key()),
            not_null=not_null,
            measures=(
                Measure(self.mirror.count_moved(), "moved"),
                Measure(self.mirror.count_stashed(), "stashed"),
                Measure(self.mirror.count_was_null(), "was_null"),
                Measure(self.mirror.count_missing(), "missing"),
            ),
            contract_locks=(parent, TableLock(schema, child, "ACCESS EXCLUSIVE"), *referents),
            contract=tuple(
                drop_mirrors
                + record_and_drop(self.table, self.column, self.fk_names, schema=schema)
            ),
            # The parent's column still holds every value: it wins; the keys go.
            abort=(
                *drop_mirrors,
                Run(ddl.drop_column_if_exists(child, self.child_column, schema=schema)),
                *restore_steps(
                    self.slot, self.type_text, stash=True, keep_existing=True, tally=None
                ),
            ),
            writes_source=True,
            also_writes=(child,),
        )

    def _batch(self, where: Sql) -> list[Step]:
        """The children of the parents ``where`` selects; the value of those without
        children into their JSONB (those the mirrors did are skipped)."""
        slot = self.slot
        todo = sql.SQL("{} AND {} AND NOT {}").format(
            where, self.family.childless("t"), slot.holds_key
        )
        return [
            Run(self.mirror.copy_down(where)),
            Run(slot.mark_null_jsonb(todo)),
            Run(slot.write_values(todo)),
        ]

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        notes = [f"dropped foreign key {name}" for name in self.fk_names]
        if tallies.get("was_null"):
            notes.append(
                f"{tallies['was_null']} parent(s) had a NULL {self.slot.jsonb_column}"
                " (kept in the stash)"
            )
        return {"moved": tallies.get("moved", 0), "stashed": tallies.get("stashed", 0)}, notes
