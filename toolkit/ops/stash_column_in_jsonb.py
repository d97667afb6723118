"""``stash_column_in_jsonb``: a column's values into a key of the row's own JSONB.

The value moves into the row's own JSONB under a key; everything that must come back but
must not show in that JSONB (that it was SQL NULL, the column's definition) goes to the
toolkit's stash table. Inverse: ``restore_column_from_jsonb``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass

from psycopg import sql

from toolkit.ops import reflect
from toolkit.ops.base import (
    FROM_RECORD,
    LosslessOperation,
    Plan,
    jsonb_key_name,
    lossless_operation,
    name_of,
)
from toolkit.ops.columns import foreign_key_names, record_and_drop
from toolkit.ops.jsonb_slot import (
    DEFAULT_JSONB,
    check_jsonb_column,
    key_columns,
    legacy_key,
    restore_steps,
    stash_checks,
    stash_prelude,
    stash_steps,
)
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import Measure, OnlineSteps, Run, Step, TableLock, runs
from toolkit.sql.checks import CheckSet, key_text
from toolkit.sql.idents import Sql
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.online import create_mirror, drop_mirror


@lossless_operation("stash_column_in_jsonb")
@dataclass(frozen=True)
class StashColumnInJsonbOp(LosslessOperation):
    """Write every non-NULL ``table.column`` into ``jsonb_column`` under ``key`` (default
    ``legacy_<column>``), then drop the column's foreign keys (looked up) and the column.

    Values keep their exact text (``to_jsonb``); rows whose value is NULL are untouched.
    A row whose JSONB is SQL NULL gets ``{key: value}`` and the stash remembers it was
    NULL, so the restore gives NULL back. Refuses, before any change, rows whose JSONB
    is not an object where a value must go, and rows already holding ``key``.
    ``primary_key`` (which identifies rows in the stash) is reflected online and
    required offline.
    """

    table: str
    column: str
    _: KW_ONLY
    jsonb_column: str = DEFAULT_JSONB
    key: str | None = None
    primary_key: str | tuple[str, ...] | None = None
    schema: str | None = None
    online: bool | None = None

    @property
    def stash_key(self) -> str:
        return self.key or legacy_key(self.column)

    def reverse(self) -> LosslessOperation:
        """Restore the column from the JSONB (definition from the stash's record)."""
        from toolkit.ops.restore_column_from_jsonb import RestoreColumnFromJsonbOp

        return RestoreColumnFromJsonbOp(
            self.table,
            self.column,
            jsonb_column=self.jsonb_column,
            key=self.stash_key,
            type_=FROM_RECORD,
            nullable=FROM_RECORD,
            primary_key=self.primary_key,
            schema=self.schema,
        )

    def describe(self) -> str:
        """One line for logs and reports."""
        return f"Stash {self.table}.{self.column} in {self.jsonb_column}[{self.stash_key!r}]"

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """What it reads and changes (see ``LosslessOperation.footprint``)."""
        key = jsonb_key_name(self.schema, self.table, self.jsonb_column, self.stash_key)
        both = frozenset({name_of(self.schema, self.table, self.column), key})
        return both, both

    def resolve(self, runner: Runner) -> StashPlan:
        """The table's key and the column's foreign keys (online), else the arguments."""
        runner.require_online_args(f"{self.table}.{self.column}", primary_key=self.primary_key)
        keys = key_columns(runner, self.table, self.primary_key, self.schema)
        type_text = None
        if not runner.offline:
            found = reflect.existing_column(runner, self.table, self.column, self.schema)
            type_text = found.type_text
        check_jsonb_column(runner, self.table, self.jsonb_column, self.schema)
        slot = JsonbSlot(
            self.table, self.column, self.jsonb_column, self.stash_key, keys, self.schema
        )
        return StashPlan(
            self.name,
            runner.offline,
            self.table,
            self.column,
            slot=slot,
            fk_names=foreign_key_names(runner, self.table, self.column, self.schema),
            type_text=type_text,
        )


@dataclass(frozen=True, kw_only=True)
class StashPlan(Plan):
    """A resolved ``stash_column_in_jsonb``."""

    slot: JsonbSlot
    fk_names: tuple[str, ...]
    #: The column's type (online; what an aborted online run gives back with).
    type_text: str | None = None

    def dropped_columns(self) -> list[tuple[str | None, str, str]]:
        return [(self.slot.schema, self.table, self.column)]

    def locks(self) -> list[TableLock]:
        return [TableLock(self.slot.schema, self.table)]

    def checks(self) -> list[CheckSet]:
        keys = key_text("t", self.slot.key_columns)
        return [CheckSet(self.slot.source, keys, tuple(stash_checks(self.slot)))]

    def steps(self) -> list[Step]:
        schema = self.slot.schema
        drop = record_and_drop(self.table, self.column, self.fk_names, schema=schema)
        return stash_steps(self.slot) + drop

    def online_steps(self) -> OnlineSteps:
        slot, schema = self.slot, self.slot.schema
        mirror = create_mirror(
            self.table,
            self.column,
            schema=schema,
            timing="BEFORE",
            events=("INSERT", "UPDATE"),
            # Every update (batches by pages): one that moves a row to a page the batches
            # already passed puts the key as a change of the value would.
            columns=(),
            body=slot.mirror_body(),
        )
        contract = runs(drop_mirror(self.table, self.column, schema=schema))
        return OnlineSteps(
            table=self.table,
            column=self.column,
            schema=schema,
            keys=slot.key_columns,
            expand_locks=(TableLock(schema, self.table),),
            # The prelude reads the whole table: before the expand, which locks it.
            prepare=tuple(stash_prelude(slot)),
            expand=(Run(slot.register_key()), *runs(mirror)),
            batch=self._batch,
            constraints=(),
            measures=(
                Measure(slot.count_mirrored(missing=False), "stashed"),
                Measure(slot.count_mirrored(missing=True), "missing"),
            ),
            contract_locks=(TableLock(schema, self.table, "ACCESS EXCLUSIVE"),),
            contract=tuple(
                contract + record_and_drop(self.table, self.column, self.fk_names, schema=schema)
            ),
            # The column still holds every value: it wins (keep_existing); the keys go.
            abort=(
                *contract,
                *restore_steps(
                    slot, self.type_text or "", stash=True, keep_existing=True, tally=None
                ),
            ),
            writes_source=True,
            physical=True,
        )

    def _batch(self, where: Sql) -> list[Step]:
        """Mark and write the rows ``where`` selects that do not hold the key yet."""
        slot = self.slot
        todo = sql.SQL("{} AND NOT {}").format(where, slot.holds_key)
        return [Run(slot.mark_null_jsonb(todo), "was_null"), Run(slot.write_values(todo))]

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        notes = [f"dropped foreign key {name}" for name in self.fk_names]
        if tallies.get("was_null"):
            notes.append(
                f"{tallies['was_null']} row(s) had a NULL {self.slot.jsonb_column}"
                " (kept in the stash)"
            )
        return {"stashed": tallies.get("stashed", 0)}, notes
