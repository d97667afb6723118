"""``promote_fk_to_junction``: an FK column becomes a junction table.

One link per non-NULL value, loaded into the bare table, then constrained; the column is
recorded and dropped. Inverse: ``collapse_junction_to_fk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, replace

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import junction_record, reflect
from toolkit.ops.base import (
    FROM_RECORD,
    FromRecord,
    LosslessOperation,
    Plan,
    lossless_operation,
    name_of,
)
from toolkit.ops.columns import foreign_key_names, record_and_drop
from toolkit.ops.junction import shape_of
from toolkit.ops.junction_record import JunctionRecord
from toolkit.ops.refusals import value_without_referent
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import ConcurrentIndex, Measure, OnlineSteps, Run, Step, TableLock, runs
from toolkit.sql.checks import CheckSet, key_text
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import Sql, table_as_t
from toolkit.sql.junction import JunctionShape
from toolkit.sql.junction_record import (
    forget_junction,
    load_recorded_links,
    refuse_recorded_offline,
)
from toolkit.sql.online import create_mirror, drop_mirror
from toolkit.sql.stash import drop_stash_if_empty, ensure_stash, forget


@lossless_operation("promote_fk_to_junction")
@dataclass(frozen=True)
class PromoteFkToJunctionOp(LosslessOperation):
    """Move every non-NULL ``table.column`` value into a new junction table.

    The junction is ``junction(id uuid PK default gen_random_uuid(), owner_column NOT
    NULL -> table(owner_key), referent_column NOT NULL -> referent_table(referent_key),
    created_at timestamptz NOT NULL default now())`` with ``UNIQUE(owner_column,
    referent_column)`` named ``unique_name`` (default ``uq_<junction>_<owner>_<referent>``),
    both foreign keys ``ON DELETE ondelete`` and, with ``index``, an index
    ``ix_<junction>_<column>`` on each. Rows are loaded into the bare table first, then
    constrained. The column's foreign keys (looked up by name) and the column are
    dropped; its definition is recorded so ``collapse_junction_to_fk`` can restore it.
    Links a previous collapse kept (``keep_extra_links``) come back verbatim. A junction
    a collapse recorded (it was not made by a promote) comes back exactly as it was (its
    definition, names and links), and ``ondelete``, ``index`` and the other junction
    arguments are then compared with the record (a contradiction is refused);
    ``FROM_RECORD`` is, without a record, ``ondelete="CASCADE"`` and ``index=True``.
    Online, ``owner_key`` (the table's primary key) and ``referent_table``/``referent_key``
    (the column's foreign key) are reflected; offline they must be given.
    """

    table: str
    column: str
    _: KW_ONLY
    junction: str
    owner_column: str
    referent_column: str
    referent_table: str | None = None
    referent_key: str | None = None
    unique_name: str | None = None
    ondelete: str | FromRecord | None = FROM_RECORD
    index: bool | FromRecord = FROM_RECORD
    owner_key: str | None = None
    schema: str | None = None
    online: bool | None = None

    def reverse(self) -> LosslessOperation:
        """Collapse the junction back into the column (its definition comes from the record)."""
        from toolkit.ops.collapse_junction_to_fk import CollapseJunctionToFkOp

        return CollapseJunctionToFkOp(
            self.junction,
            table=self.table,
            column=self.column,
            owner_column=self.owner_column,
            referent_column=self.referent_column,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
            type_=FROM_RECORD,
            nullable=FROM_RECORD,
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

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """What it reads and changes (see ``LosslessOperation.footprint``)."""
        column = name_of(self.schema, self.table, self.column)
        both = frozenset({column, name_of(self.schema, self.junction)})
        return both, both

    def resolve(self, runner: Runner) -> PromotePlan:
        """Owner key and referent: given, else reflected (online); the kept links."""
        runner.require_online_args(
            f"{self.table}.{self.column}",
            owner_key=self.owner_key,
            referent_table=self.referent_table,
            referent_key=self.referent_key,
        )
        referent: ForeignKeySpec | None = None
        if self.referent_table is not None:
            key = (self.referent_key,) if self.referent_key else ()
            referent = ForeignKeySpec.to(self.referent_table, key, self.schema)
        owner_key, guaranteed, kept, record = self.owner_key, False, 0, None
        if not runner.offline:
            owner_key, referent, guaranteed, kept = self._reflect(runner, referent)
            record = junction_record.read(runner, self.table, self.column, self.schema)
        if record is not None:
            junction_record.refuse_contradictions(record, self, f"{self.table}.{self.column}")
        assert owner_key is not None and referent is not None
        ondelete = "CASCADE" if self.ondelete is FROM_RECORD else self.ondelete
        return PromotePlan(
            self.name,
            runner.offline,
            self.table,
            self.column,
            shape=shape_of(self, owner_key, self.ondelete),
            referent=replace(referent, ondelete=ondelete, onupdate=None),
            guaranteed=guaranteed,
            kept=kept,
            record=record,
            fk_names=foreign_key_names(runner, self.table, self.column, self.schema),
        )

    def _reflect(
        self, runner: Runner, referent: ForeignKeySpec | None
    ) -> tuple[str, ForeignKeySpec, bool, int]:
        """Online: owner key, referent, whether a validated FK guarantees the values, and
        how many links a collapse kept."""
        table, column, schema = self.table, self.column, self.schema
        owner_key = self.owner_key or reflect.single_key(runner, table, schema)
        reflect.existing_column(runner, table, column, schema)
        resuming = reflect.online_run_under_way(runner, table, column, schema)
        if reflect.table_exists(runner, self.junction, schema) and not resuming:
            raise UsageError(f"promote_fk_to_junction: table {self.junction} already exists")
        current = reflect.foreign_keys(runner, table, column, schema)
        referent = referent or reflect.single_foreign_key(runner, table, column, schema)
        if referent is None:
            raise UsageError(
                f"promote_fk_to_junction: {table}.{column} has no single foreign key to"
                " follow; pass referent_table= and referent_key="
            )
        referent = reflect.with_referent_key(runner, referent)
        guaranteed = reflect.validated_by(runner, current, referent)
        kept = reflect.stash_count(runner, "link", table, column, schema)
        return owner_key, referent, guaranteed, kept


@dataclass(frozen=True, kw_only=True)
class PromotePlan(Plan):
    """A resolved ``promote_fk_to_junction``.

    ``guaranteed``: a validated foreign key already proves every value has its referent;
    ``kept``: links a collapse kept (offline: unknown, so they are always looked for);
    ``record``: the junction a collapse recorded (online), re-created instead of the
    toolkit's own.
    """

    shape: JunctionShape
    referent: ForeignKeySpec
    guaranteed: bool
    kept: int
    fk_names: tuple[str, ...]
    record: JunctionRecord | None = None

    def __post_init__(self) -> None:
        self.constraints()  # built first: a name PostgreSQL would truncate fails now

    @property
    def use_kept(self) -> bool:
        return self.offline or self.kept > 0

    def constraints(self) -> list[Sql]:
        shape = self.shape
        owner = ForeignKeySpec(
            self.table, (shape.owner_key,), shape.schema, ondelete=self.referent.ondelete
        )
        return shape.constrain(owner, self.referent)

    def dropped_columns(self) -> list[tuple[str | None, str, str]]:
        return [(self.shape.schema, self.table, self.column)]

    def dropped_references(self) -> list[tuple[str | None, str]]:
        return [(self.referent.referent_schema, self.referent.referent_table)]

    def locks(self) -> list[TableLock]:
        return [TableLock(self.shape.schema, self.table)]

    def refuse(self, runner: Runner) -> None:
        """Also refused offline: a junction a collapse recorded (the script would make the
        toolkit's junction instead of giving that one back)."""
        super().refuse(runner)
        if runner.offline:
            guard = refuse_recorded_offline(self.table, self.column, schema=self.shape.schema)
            runner.execute([Run(guard)])

    def checks(self) -> list[CheckSet]:
        if self.guaranteed:
            return []
        orphans = value_without_referent(self.table, self.column, self.referent)
        source = table_as_t(self.table, self.shape.schema)
        return [CheckSet(source, key_text("t", (self.shape.owner_key,)), (orphans,))]

    def steps(self) -> list[Step]:
        if self.record is not None:
            return self._recorded_steps(self.record)
        shape, schema = self.shape, self.shape.schema
        steps: list[Step] = runs([shape.create_bare(), shape.shape_columns()])
        if self.use_kept:
            kept = shape.load_kept_links(self.referent, self.referent.referent_columns[0])
            steps += [Run(ensure_stash(schema)), Run(kept, "restored")]
        steps.append(Run(shape.load_from_column(skip_kept=self.use_kept), "moved"))
        if self.use_kept:
            steps.append(Run(forget("link", self.table, self.column, schema=schema)))
        steps += runs(self.constraints())
        return steps + record_and_drop(self.table, self.column, self.fk_names, schema=schema)

    def _recorded_steps(self, record: JunctionRecord) -> list[Step]:
        """The junction the collapse recorded, exactly: created bare from its record, its
        identity positions set, its recorded links loaded verbatim (new links for owners
        changed since), then its constraints, indexes and the rest; the record goes, and
        the column's record too if there was none before the collapse."""
        shape, table, column, schema = self.shape, self.table, self.column, self.shape.schema
        steps: list[Step] = runs(
            [sql.SQL(record.create), *map(sql.SQL, record.before_load), ensure_stash(schema)]
        )
        steps += [
            Run(load_recorded_links(shape, self.referent), "restored"),
            Run(shape.load_from_column(skip_kept=True), "moved"),
        ]
        steps += runs([forget("link", table, column, schema=schema)])
        steps += runs([sql.SQL(statement) for statement in record.statements])
        steps += record_and_drop(table, column, self.fk_names, schema=schema)
        cleanup = [forget_junction(table, column, schema=schema)]
        if not record.column_recorded:
            cleanup.append(forget("column", table, column, schema=schema))
        return steps + runs([*cleanup, drop_stash_if_empty(schema)])

    def online_steps(self) -> OnlineSteps:
        if self.record is not None:
            raise UsageError(
                f"promote_fk_to_junction: {self.shape.name} was recorded by a collapse and"
                " online mode would re-create the toolkit's junction instead: run it without"
                " online mode"
            )
        shape, schema = self.shape, self.shape.schema
        source = TableLock(schema, self.table, "ACCESS EXCLUSIVE")
        referent = TableLock(self.referent.referent_schema, self.referent.referent_table)
        owner = ForeignKeySpec(
            self.table, (shape.owner_key,), schema, ondelete=self.referent.ondelete
        )
        mirror = create_mirror(
            self.table,
            self.column,
            schema=schema,
            timing="AFTER",
            events=("INSERT", "UPDATE", "DELETE"),
            columns=(shape.owner_key, self.column),
            body=shape.mirror_body(),
        )
        contract: list[Step] = runs(drop_mirror(self.table, self.column, schema=schema))
        if self.use_kept:
            contract.append(Run(forget("link", self.table, self.column, schema=schema)))
        return OnlineSteps(
            table=self.table,
            column=self.column,
            schema=schema,
            keys=(shape.owner_key,),
            expand_locks=(TableLock(schema, self.table),),
            # The unique pair only: what the mirror and the batches look owners up by. The
            # other indexes are built after the backfill, in one sort each.
            expand=tuple(
                runs([shape.create_bare(), shape.shape_columns(), shape.unique_pair(), *mirror])
            ),
            batch=self._batch,
            indexes=tuple(
                ConcurrentIndex(shape.name, name, create)
                for name, create in shape.indexes_built_later()
            ),
            attach=((shape.name, shape.primary_key_name, shape.attach_primary_key()),),
            constraints=tuple(
                (shape.name, name, statement)
                for name, statement in shape.foreign_keys(owner, self.referent)
            ),
            measures=(
                Measure(shape.count_mirrored(missing=False), "moved"),
                Measure(shape.count_mirrored(missing=True), "missing"),
            ),
            contract_locks=(source, referent),
            contract=tuple(
                contract + record_and_drop(self.table, self.column, self.fk_names, schema=schema)
            ),
            abort=(*runs(drop_mirror(self.table, self.column, schema=schema)), Run(shape.drop())),
        )

    def _batch(self, where: Sql) -> list[Step]:
        """The links of the owners ``where`` selects that have none yet (the mirror wrote
        the others): the kept ones first, then the column's."""
        shape = self.shape
        todo = sql.SQL("{} AND {}").format(where, shape.owners_without_links())
        steps: list[Step] = []
        if self.use_kept:
            kept = shape.load_kept_links(self.referent, self.referent.referent_columns[0], todo)
            steps.append(Run(kept, "restored"))
        steps.append(Run(shape.load_from_column(skip_kept=False, row_filter=todo)))
        return steps

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        notes = [f"dropped foreign key {name}" for name in self.fk_names]
        counts = {"moved": tallies.get("moved", 0)}
        if self.kept:
            restored = tallies.get("restored", 0)
            counts["restored"] = restored
            if self.kept > restored:
                counts["dropped"] = self.kept - restored
                notes.append(
                    f"{self.kept - restored} kept link(s) discarded: their owner's"
                    f" {self.column} changed or their referent is gone"
                )
        return counts, notes
