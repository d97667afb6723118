"""``collapse_junction_to_fk``: a junction table back into an FK column (first link).

Inverse of ``promote_fk_to_junction``: each owner gets its first link in an explicit
order; the other links are the declared loss, or kept in the stash (``keep_extra_links``)
for the next promote to re-insert verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import junction_record, reflect
from toolkit.ops.base import (
    FROM_RECORD,
    FromRecord,
    LosslessOperation,
    Plan,
    given,
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
from toolkit.ops.guards import refuse_payload
from toolkit.ops.jsonb_slot import stash_state
from toolkit.ops.junction import DEFAULT_ORDER, shape_of
from toolkit.ops.policies import MissingPolicy
from toolkit.ops.refusals import refusal
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import Measure, OnlineSteps, Run, Step, TableLock, runs
from toolkit.sql import ddl
from toolkit.sql.checks import CheckSet, key_text
from toolkit.sql.collapse_online import FirstLinks
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import Sql, table_as_t, type_sql
from toolkit.sql.junction import CREATED_AT_COLUMN, ID_COLUMN, JunctionShape
from toolkit.sql.junction_record import (
    forget_junction,
    junction_recorded_unless,
    record_junction,
)
from toolkit.sql.online import create_mirror, drop_mirror
from toolkit.sql.stash import analyze_stash, ensure_stash, forget


@lossless_operation("collapse_junction_to_fk")
@dataclass(frozen=True)
class CollapseJunctionToFkOp(LosslessOperation):
    """Re-add ``table.column`` set to each owner's first link, then drop the junction.

    The first link is the first in ``order_by`` order (junction columns; ``-name`` for
    descending; the referent breaks remaining ties), never an arbitrary pick. The column's
    type ``type_``, ``nullable`` and foreign keys default to what the promote recorded
    (``FROM_RECORD``), else (online) the junction's referent column and its foreign key,
    else a nullable column with no key. ``referent_table`` (``referent_key`` default
    ``id``) gives the foreign key explicitly: ``fk_name`` (default
    ``<table>_<column>_fkey``), ``ondelete``, ``onupdate``, ``deferrable``, ``initially``,
    ``match``; with a record they must agree with it (a contradiction is refused) and the
    recorded keys are re-created. Owners with several links keep
    only the first: the others are counted as ``lost``, or with ``keep_extra_links`` kept
    in the toolkit's stash so that a later ``promote_fk_to_junction`` re-inserts them
    verbatim (repeated pairs are then refused). Junction columns other than ``id``, the
    two link columns and ``created_at`` are refused unless ``drop_payload`` names them
    (their loss declared). Owners with no link while NOT NULL: ``on_missing="refuse"`` (default)
    raises before any change; ``"keep_null"`` leaves them NULL and the column nullable;
    ``"fill"`` sets ``fill_value``. ``unique_name``, ``junction_ondelete`` and ``index``
    describe the junction for ``reverse()``. ``owner_key`` (the table's primary key) is
    reflected online; offline ``owner_key`` and ``type_`` are required. A junction the
    toolkit did not make (no record of ``table.column`` in the stash), and any junction
    with ``keep_extra_links``, is recorded, its definition and the first link of every
    owner, so that the promote back gives it back exactly
    (``toolkit.sql.junction_record``); not with ``drop_payload``.
    """

    junction: str
    _: KW_ONLY
    table: str
    column: str
    owner_column: str
    referent_column: str
    referent_table: str | None = None
    referent_key: str | None = None
    order_by: tuple[str, ...] = DEFAULT_ORDER
    type_: Any = FROM_RECORD
    nullable: bool | FromRecord = FROM_RECORD
    fk_name: str | None = None
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool | None = None
    initially: str | None = None
    match: str | None = None
    on_missing: str = "refuse"
    fill_value: str | None = None
    keep_extra_links: bool = False
    drop_payload: tuple[str, ...] = ()
    unique_name: str | None = None
    junction_ondelete: str | FromRecord | None = FROM_RECORD
    index: bool | FromRecord = FROM_RECORD
    owner_key: str | None = None
    schema: str | None = None
    online: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "order_by", tuple(self.order_by))
        object.__setattr__(self, "drop_payload", tuple(self.drop_payload))
        self.policy  # noqa: B018  (a bad policy is a usage error when the op is built)
        self.fk_args  # noqa: B018  (so is a bad foreign-key option)

    @property
    def policy(self) -> MissingPolicy:
        return MissingPolicy(self.on_missing, self.fill_value)

    @property
    def fk_args(self) -> ForeignKeyArgs:
        """What the arguments say about ``table.column``'s foreign key."""
        return ForeignKeyArgs.of(self, self.referent_table, self.referent_key)

    def reverse(self) -> LosslessOperation:
        """Promote the column back into the junction."""
        from toolkit.ops.promote_fk_to_junction import PromoteFkToJunctionOp

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

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """What it reads and changes (see ``LosslessOperation.footprint``)."""
        column = name_of(self.schema, self.table, self.column)
        both = frozenset({column, name_of(self.schema, self.junction)})
        return both, both

    def resolve(self, runner: Runner) -> CollapsePlan:
        """Owner key and the column's definition: arguments, record, the junction."""
        where = f"{self.table}.{self.column}"
        runner.require_online_args(where, owner_key=self.owner_key, type_=given(self.type_) or None)
        owner_key = self.owner_key
        if not runner.offline:
            if not reflect.table_exists(runner, self.junction, self.schema):
                raise UsageError(f"collapse_junction_to_fk: table {self.junction} does not exist")
            if reflect.column(
                runner, self.table, self.column, self.schema
            ) is not None and not reflect.online_run_under_way(
                runner, self.table, self.column, self.schema
            ):
                raise UsageError(f"collapse_junction_to_fk: column {where} already exists")
            owner_key = owner_key or reflect.single_key(runner, self.table, self.schema)
        assert owner_key is not None
        records: bool | None = None
        if not runner.offline:
            made = reflect.recorded(runner, self.table, self.column, self.schema) is not None
            records = self.keep_extra_links or not made
        return CollapsePlan(
            self.name,
            runner.offline,
            self.junction,
            self.referent_column,
            shape=shape_of(self, owner_key, self.junction_ondelete),
            target=self._target(runner),
            policy=self.policy,
            order_by=self.order_by,
            keep_extra_links=self.keep_extra_links,
            drop_payload=self.drop_payload,
            stash=stash_state(runner, self.schema),
            records=False if self.drop_payload else records,
        )

    def _target(self, runner: Runner) -> ColumnPlan:
        """How the column comes back (see ``toolkit.ops.columns``)."""

        def junction_type() -> str | None:
            found = reflect.column(runner, self.junction, self.referent_column, self.schema)
            return found.type_text if found else None

        def junction_fk() -> NamedForeignKey | None:
            spec = reflect.single_foreign_key(
                runner, self.junction, self.referent_column, self.schema
            )
            if spec is None:
                return None
            # The junction's own options (ON DELETE CASCADE) are not the column's.
            bare = ForeignKeySpec(spec.referent_table, spec.referent_columns, spec.referent_schema)
            return self._fk_name(), self.fk_args.override(bare)

        spec = self.fk_args.spec(default_key="id")
        explicit = (self._fk_name(), spec) if spec is not None else None
        return resolve_column(
            runner,
            self.table,
            self.column,
            schema=self.schema,
            type_text=type_sql(self.type_) if given(self.type_) is not None else None,
            nullable=given(self.nullable),
            foreign_key=explicit,
            fk_args=self.fk_args,
            fallback_type=junction_type,
            fallback_fk=junction_fk,
        )

    def _fk_name(self) -> str:
        return self.fk_name or default_fk_name(self.table, self.column)


@dataclass(frozen=True, kw_only=True)
class CollapsePlan(Plan):
    """A resolved ``collapse_junction_to_fk`` (``table.column``: the junction's referent
    column, where the declared loss shows)."""

    shape: JunctionShape
    target: ColumnPlan
    policy: MissingPolicy
    order_by: tuple[str, ...]
    keep_extra_links: bool
    drop_payload: tuple[str, ...]
    stash: bool | None
    #: whether the junction is recorded for the promote back (it was not made by one):
    #: known online, decided when the script runs offline (None)
    records: bool | None = None

    def refuse(self, runner: Runner) -> None:
        """Also refused: payload columns the junction would take with it (undeclared),
        unless it is recorded for the promote back (payload included)."""
        super().refuse(runner)
        shape = self.shape
        if self.records:
            junction_record.refuse_generated(runner, shape.name, shape.schema)
            return
        unless: Sql = sql.SQL("")
        if self.records is None and not self.keep_extra_links:
            unless = junction_recorded_unless(shape.owner_table, shape.column, shape.schema)
        known = [ID_COLUMN, shape.owner_column, shape.referent_column, CREATED_AT_COLUMN]
        declared = self.drop_payload
        runner.execute(
            refuse_payload(runner, shape.name, known, declared, shape.schema, unless=unless)
        )

    def dropped_references(self) -> list[tuple[str | None, str]]:
        # The junction goes, with its keys to the owner table and to the referent.
        referents = self.target.referenced_tables()
        return [(self.shape.schema, self.target.table), *referents]

    def locks(self) -> list[TableLock]:
        schema = self.shape.schema
        return [TableLock(schema, self.target.table), TableLock(schema, self.shape.name)]

    def checks(self) -> list[CheckSet]:
        shape, target = self.shape, self.target
        missing = self.policy.refusal(
            "not-null-without-link",
            target.table,
            target.column,
            shape.owners_without_link(),
            applies=not target.nullable,
            junction=shape.name,
        )
        source = table_as_t(target.table, shape.schema)
        owners = CheckSet(source, key_text("t", (shape.owner_key,)), tuple(missing))
        fill = self.policy.fill_checks(
            target.table, target.column, target.type_text, target.referents()
        )
        return [owners, fill, *self._repeated_links()]

    def _repeated_links(self) -> list[CheckSet]:
        """With ``keep_extra_links``, a repeated pair would fail the promote back."""
        shape = self.shape
        if not self.keep_extra_links:
            return []
        repeated = refusal(
            "repeated-link",
            shape.name,
            None,
            shape.repeated_pair(),
            owner_column=shape.owner_column,
            referent_column=shape.referent_column,
        )
        source = table_as_t(shape.name, shape.schema)
        pair = key_text("t", (shape.owner_column, shape.referent_column))
        return [CheckSet(source, pair, (repeated,))]

    def steps(self) -> list[Step]:
        shape, target, schema = self.shape, self.target, self.shape.schema
        steps: list[Step] = []
        keep = self.keep_extra_links
        if keep or self.records is not False:
            table, column = target.table, target.column
            kept = shape.keep_links(self.order_by)
            if self.records is not False:
                # with keep_extra_links and a record, it does not need keep_links any more
                kept = record_junction(shape, self.order_by, keep_extra_links=keep)
            steps += [
                Run(ensure_stash(schema)),
                Run(forget("link", table, column, schema=schema)),
                Run(forget_junction(table, column, schema=schema)),
                Run(kept),
                Run(analyze_stash(schema)),  # the next promote joins the owners with it
            ]
        steps += [
            Run(target.add()),
            Run(shape.set_first_links(self.order_by), "collapsed"),
            Measure(shape.count_links(), "links"),
        ]
        if self.drop_payload:
            steps.append(Measure(shape.count_payload(self.drop_payload), "payload"))
        if self.keep_extra_links:
            # The stash also holds each owner's first link (see keep_links): not counted.
            steps.append(Measure(shape.count_kept_extras(), "kept"))
        steps += target.finish_steps(self.policy, offline=self.offline)
        steps.append(Run(ddl.drop_table(shape.name, schema=schema)))
        # The stash exists now if this collapse kept links, whatever it was before.
        stashing = self.keep_extra_links or self.records is not False
        stash = True if stashing and self.stash is False else self.stash
        return steps + forget_recorded(target.table, target.column, schema=schema, stash=stash)

    @property
    def first_links(self) -> FirstLinks:
        return FirstLinks(self.shape, self.order_by)

    def online_steps(self) -> OnlineSteps:
        """Expand: the column (nullable, empty) and a mirror trigger on the junction that
        keeps each owner's column at its first link (``toolkit.sql.collapse_online``);
        batches over the owners set it as the plain collapse does; the column's
        constraints and objects without long locks (``toolkit.ops.column_online``); the
        contract drops the trigger and the junction and forgets the record. Abort drops
        the column and the trigger: the junction was never changed."""
        shape, target, schema = self.shape, self.target, self.shape.schema
        self._refuse_online()
        column = online_column(target)
        owner = TableLock(schema, target.table, "ACCESS EXCLUSIVE")
        mirror = runs(drop_mirror(shape.name, shape.owner_column, schema=schema))
        referents = [
            TableLock(s, t)
            for s, t in self.dropped_references()
            if (s, t) != (schema, target.table)
        ]
        return OnlineSteps(
            table=target.table,
            column=target.column,
            schema=schema,
            keys=(shape.owner_key,),
            expand_locks=(owner, TableLock(schema, shape.name)),
            expand=(Run(target.add()), *runs(self._mirror())),
            batch=lambda where: [Run(self.first_links.fill(where))],
            constraints=column.constraints,
            indexes=column.indexes,
            not_null=column.not_null,
            measures=self._measures(),
            contract_locks=(owner, TableLock(schema, shape.name, "ACCESS EXCLUSIVE"), *referents),
            contract=(
                *mirror,
                *column.contract,
                Run(ddl.drop_table(shape.name, schema=schema)),
                # The expand made the stash (online mode's bookkeeping): it exists now.
                *forget_recorded(target.table, target.column, schema=schema, stash=True),
            ),
            abort=(
                *mirror,
                Run(ddl.drop_column_if_exists(target.table, target.column, schema=schema)),
            ),
            writes_source=True,
        )

    def _refuse_online(self) -> None:
        """What online mode does not do (before any change)."""
        target = self.target
        if not target.nullable and self.policy.mode != "refuse":
            raise UsageError(
                f"online mode: {target.where} with on_missing={self.policy.mode!r}: run this"
                " operation without online mode (online, owners without a link are refused"
                " before any change)"
            )
        if self.keep_extra_links or self.records:
            why = "keep_extra_links" if self.keep_extra_links else "a junction no promote made"
            raise UsageError(
                f"online mode: collapse into {target.where} with {why} (recorded in the stash"
                " for the promote back, links included): not built yet; run this operation"
                " without online mode"
            )

    def _mirror(self) -> list[Sql]:
        shape = self.shape
        return create_mirror(
            shape.name,
            shape.owner_column,
            schema=shape.schema,
            timing="AFTER",
            events=("INSERT", "UPDATE", "DELETE"),
            columns=self.first_links.trigger_columns(),
            body=self.first_links.mirror_body(),
        )

    def _measures(self) -> tuple[Measure, ...]:
        """What the plain collapse counts, and the owners whose column is not their first
        link (``missing``: must be 0)."""
        shape, links = self.shape, self.first_links
        measures = [
            Measure(links.count_collapsed(), "collapsed"),
            Measure(shape.count_links(), "links"),
        ]
        if self.drop_payload:
            measures.append(Measure(shape.count_payload(self.drop_payload), "payload"))
        return (*measures, Measure(links.count_missing(), "missing"))

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        collapsed = tallies.get("collapsed", 0)
        counts: dict[str, int] = {"collapsed": collapsed}
        notes: list[str] = []
        if self.keep_extra_links:
            kept = tallies.get("kept", 0)
            counts.update(stashed=kept, lost=0)
            if kept:
                notes.append(f"{kept} extra link(s) kept in the stash")
        else:
            extra = tallies.get("links", 0) - collapsed
            counts["lost"] = extra
            if extra:
                table = self.target.table
                notes.append(f"{extra} link(s) beyond the first per {table} row lost (declared)")
        if self.drop_payload:
            names = ", ".join(self.drop_payload)
            counts["payload_dropped"] = tallies.get("payload", 0)
            notes.append(
                f"payload column(s) {names} dropped with {self.shape.name}:"
                f" {counts['payload_dropped']} link(s) held a value there (declared)"
            )
        if self.records is False and not self.drop_payload:
            notes.append(
                f"link ids and created_at not kept (this undoes the promote that made"
                f" {self.shape.name}; keep_extra_links=True keeps them)"
            )
        finish_counts, finish_notes = self.target.finish_report(self.policy, tallies)
        counts.update(finish_counts)
        return counts, notes + finish_notes
