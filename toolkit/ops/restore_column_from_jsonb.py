"""``restore_column_from_jsonb``: a column back out of a key of the row's own JSONB.

Inverse of ``stash_column_in_jsonb``: the column is re-created (from the arguments, else
the stash's record), filled from the key, constrained; the key and the stash's marks go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import online, reflect
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
from toolkit.ops.column_online import online_column
from toolkit.ops.columns import (
    ColumnPlan,
    NamedForeignKey,
    default_fk_name,
    forget_recorded,
    resolve_column,
)
from toolkit.ops.fk_args import ForeignKeyArgs
from toolkit.ops.jsonb_slot import (
    DEFAULT_JSONB,
    check_jsonb_column,
    key_columns,
    legacy_key,
    orphan_checks,
    restore_steps,
    stash_state,
)
from toolkit.ops.policies import MissingPolicy
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import (
    CheckedByForeignKeys,
    ConcurrentIndex,
    Measure,
    OnlineSteps,
    Run,
    Step,
    TableLock,
    runs,
)
from toolkit.sql import ddl
from toolkit.sql.checks import CheckSet, key_text
from toolkit.sql.idents import Sql, type_sql
from toolkit.sql.jsonb_slot import (
    MARKS_INDEX,
    JsonbSlot,
    create_marks_index,
    drop_marks_index,
    outside_restore_batches,
    restore_batch_marker,
)
from toolkit.sql.online import create_mirror, drop_mirror
from toolkit.sql.stash import STASH_TABLE, drop_stash_if_empty, if_stash_exists


@lossless_operation("restore_column_from_jsonb")
@dataclass(frozen=True)
class RestoreColumnFromJsonbOp(LosslessOperation):
    """Re-add ``table.column`` (type ``type_``) from ``jsonb_column -> key`` and remove
    the key; JSONB that was SQL NULL before the stash becomes NULL again.

    ``type_`` (a type string or SQLAlchemy type) and ``nullable`` default to what the
    stash recorded (``FROM_RECORD``; offline ``type_`` is required, and a column with no
    record comes back nullable). ``foreign_key=("referent_table", "key")`` adds a foreign
    key (the referent in ``schema`` unless qualified: ``("ref.goals", "id")``) named
    ``fk_name`` (default ``<table>_<column>_fkey``) with ``ondelete``, ``onupdate``,
    ``deferrable``, ``initially`` and ``match``. Online, with a record, the foreign keys
    the stash recorded are re-created under their names, and an argument contradicting
    the record (type, nullability, referent, name, option) is refused; offline, without
    ``foreign_key``, they are replayed from the record when the script runs.
    ``nullable=False`` sets NOT NULL; rows with no value then follow ``on_missing``
    (``"refuse"`` before any change, ``"keep_null"``, or ``"fill"`` with
    ``fill_value``). Stashed values whose referent is gone are refused before any change.
    """

    table: str
    column: str
    _: KW_ONLY
    jsonb_column: str = DEFAULT_JSONB
    key: str | None = None
    type_: Any = FROM_RECORD
    nullable: bool | FromRecord = FROM_RECORD
    foreign_key: tuple[str, str] | None = None
    fk_name: str | None = None
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool | None = None
    initially: str | None = None
    match: str | None = None
    on_missing: str = "refuse"
    fill_value: str | None = None
    primary_key: str | tuple[str, ...] | None = None
    schema: str | None = None
    online: bool | None = None

    def __post_init__(self) -> None:
        self.policy  # noqa: B018  (a bad policy is a usage error when the op is built)
        self.fk_args  # noqa: B018  (so is a bad foreign-key option)

    @property
    def policy(self) -> MissingPolicy:
        return MissingPolicy(self.on_missing, self.fill_value)

    @property
    def fk_args(self) -> ForeignKeyArgs:
        """What the arguments say about the column's foreign key."""
        referent_table, referent_key = self.foreign_key or (None, None)
        return ForeignKeyArgs.of(self, referent_table, referent_key)

    @property
    def stash_key(self) -> str:
        return self.key or legacy_key(self.column)

    def reverse(self) -> LosslessOperation:
        """Stash the column again."""
        from toolkit.ops.stash_column_in_jsonb import StashColumnInJsonbOp

        return StashColumnInJsonbOp(
            self.table,
            self.column,
            jsonb_column=self.jsonb_column,
            key=self.stash_key,
            primary_key=self.primary_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        return f"Restore {self.table}.{self.column} from {self.jsonb_column}[{self.stash_key!r}]"

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """What it reads and changes (see ``LosslessOperation.footprint``)."""
        key = jsonb_key_name(self.schema, self.table, self.jsonb_column, self.stash_key)
        both = frozenset({name_of(self.schema, self.table, self.column), key})
        return both, both

    def resolve(self, runner: Runner) -> RestorePlan:
        """The key, the column's definition (arguments, else the record) and the stash."""
        where = f"{self.table}.{self.column}"
        runner.require_online_args(where, primary_key=self.primary_key)
        keys = key_columns(runner, self.table, self.primary_key, self.schema)
        if (
            not runner.offline
            and reflect.column(runner, self.table, self.column, self.schema)
            and not online.under_way(runner, self)  # the online run's expand added it
        ):
            raise UsageError(f"restore_column_from_jsonb: column {where} already exists")
        check_jsonb_column(runner, self.table, self.jsonb_column, self.schema)
        column = resolve_column(
            runner,
            self.table,
            self.column,
            schema=self.schema,
            type_text=type_sql(self.type_) if given(self.type_) is not None else None,
            nullable=given(self.nullable),
            foreign_key=self._explicit_fk(),
            fk_args=self.fk_args,
        )
        slot = JsonbSlot(
            self.table, self.column, self.jsonb_column, self.stash_key, keys, self.schema
        )
        return RestorePlan(
            self.name,
            runner.offline,
            self.table,
            self.column,
            slot=slot,
            target=column,
            policy=self.policy,
            stash=stash_state(runner, self.schema),
        )

    def _explicit_fk(self) -> NamedForeignKey | None:
        spec = self.fk_args.spec()
        if spec is None:
            return None
        return self.fk_name or default_fk_name(self.table, self.column), spec


@dataclass(frozen=True, kw_only=True)
class RestorePlan(Plan):
    """A resolved ``restore_column_from_jsonb``."""

    slot: JsonbSlot
    target: ColumnPlan
    policy: MissingPolicy
    stash: bool | None

    def locks(self) -> list[TableLock]:
        return [TableLock(self.slot.schema, self.table)]

    def checks(self) -> list[CheckSet]:
        slot, target = self.slot, self.target
        missing = self.policy.refusal(
            "not-null-without-stashed-value",
            self.table,
            self.column,
            sql.SQL("NOT {}").format(slot.holds_key),
            applies=not target.nullable,
            key=slot.key,
            jsonb_column=slot.jsonb_column,
        )
        fill = self.policy.fill_checks(
            self.table, self.column, target.type_text, target.referents()
        )
        return [CheckSet(slot.source, key_text("t", slot.key_columns), tuple(missing)), fill]

    def orphans(self) -> CheckSet:
        """Stashed values without their referent: the new foreign keys check them."""
        slot, target = self.slot, self.target
        found = orphan_checks(slot, target.type_text, target.referents())
        return CheckSet(slot.source, key_text("t", slot.key_columns), found)

    def steps(self) -> list[Step]:
        target = self.target
        restore = restore_steps(self.slot, target.type_text, stash=self.stash)
        finish = target.finish_steps(self.policy, offline=self.offline)
        forget = forget_recorded(self.table, self.column, schema=self.slot.schema, stash=self.stash)
        return [
            CheckedByForeignKeys(self.orphans(), (Run(target.add()), *restore, *finish)),
            *forget,
        ]

    def online_steps(self) -> OnlineSteps:
        """Expand: the column (nullable, no default) and a mirror trigger that restores
        what the application writes under the key; batches move the values and remove
        the key row by row as the plain run does; the column's constraints and objects
        without long locks (``toolkit.ops.column_online``); the contract forgets the
        record. Abort puts the values back under the key and drops the column."""
        slot, target, schema = self.slot, self.target, self.slot.schema
        if not target.nullable and self.policy.mode != "refuse":
            raise UsageError(
                f"online mode: {target.where} with on_missing={self.policy.mode!r}: run this"
                " operation without online mode (online, rows with nothing to restore are"
                " refused before any change)"
            )
        column = online_column(target)
        mirror = runs(drop_mirror(self.table, self.column, schema=schema))
        return OnlineSteps(
            table=self.table,
            column=self.column,
            schema=schema,
            keys=slot.key_columns,
            expand_locks=(TableLock(schema, self.table, "ACCESS EXCLUSIVE"),),
            expand=(Run(target.add()), *runs(self._mirror())),
            backfill_indexes=(self._marks_index(),) if self.stash else (),
            batch=self._batch,
            constraints=column.constraints,
            indexes=column.indexes,
            not_null=column.not_null,
            measures=(Measure(slot.holding_count(), "missing"),),
            contract_locks=(TableLock(schema, self.table, "ACCESS EXCLUSIVE"),),
            contract=(*mirror, *column.contract, *self._forget()),
            abort=(
                *mirror,
                Run(restore_batch_marker()),  # the other restores' mirrors stay out of it
                Run(slot.write_values()),
                Run(slot.put_originals_back(target.type_text)),
                Run(slot.forget_originals()),
                *([Run(drop_marks_index(schema))] if self.stash else []),
                Run(ddl.drop_column(self.table, self.column, schema=schema)),
            ),
            writes_source=True,
        )

    def _mirror(self) -> list[Sql]:
        return create_mirror(
            self.table,
            self.column,
            schema=self.slot.schema,
            timing="BEFORE",
            events=("INSERT", "UPDATE"),
            columns=(self.slot.jsonb_column,),
            body=self.slot.restore_mirror_body(self.target.type_text, marks=bool(self.stash)),
            when=outside_restore_batches(),
        )

    def _marks_index(self) -> ConcurrentIndex:
        schema = self.slot.schema
        return ConcurrentIndex(STASH_TABLE, MARKS_INDEX, create_marks_index(schema))

    def _batch(self, where: Sql) -> list[Step]:
        """The plain run's restore, for the rows ``where`` selects."""
        slot, type_text = self.slot, self.target.type_text
        values = Run(slot.restore_values(type_text, row_filter=where), "restored")
        first = [Run(restore_batch_marker()), Run(slot.keep_originals(type_text, where))]
        if not self.stash:
            return [*first, values]
        # The marks are indexed by row (``backfill_indexes``): the batch looks up the marks
        # of its few candidates instead of reading every mark.
        marks = Run(slot.restore_null_jsonb(type_text, row_filter=where), "restored")
        return [*first, marks, values]

    def _forget(self) -> list[Step]:
        """The key, its marks and the column's record leave the stash (and so does the
        stash table, once empty)."""
        slot, schema = self.slot, self.slot.schema
        originals = slot.forget_originals()
        if not self.stash:  # the expand made it for the progress of online mode
            return [Run(originals), Run(drop_stash_if_empty(schema))]
        # The stash may be gone after the second step: the others run only if it is there.
        first = [Run(drop_marks_index(schema)), Run(slot.drop_stash_if_only_this())]
        keys = [originals, slot.unregister_key(), slot.forget_marks_if_nothing_stashed()]
        forget = forget_recorded(self.table, self.column, schema=schema, stash=None)
        return [*first, *(Run(if_stash_exists(k, schema)) for k in keys), *forget]

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        counts, notes = self.target.finish_report(self.policy, tallies)
        counts["restored"] = tallies.get("restored", 0)
        return counts, notes
