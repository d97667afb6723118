"""Dropping a column while recording it, and re-creating it exactly: the shared steps.

Operations that drop an FK column (promote, stash, move to child) record its definition
in the stash first; their inverses resolve the definition to re-create in one order:
an explicit argument, else what was recorded (online), else what the operation can
reflect from elsewhere (the junction's or the child's column), else offline a replay of
the recorded foreign keys when the script runs, or a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from psycopg import sql

from toolkit.errors import OfflineModeError, UsageError
from toolkit.ops import reflect
from toolkit.ops.fk_args import ForeignKeyArgs
from toolkit.ops.policies import MissingPolicy
from toolkit.ops.record_agreement import refuse_contradictions
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import Measure, OnlyIfZero, Run, Step, runs
from toolkit.sql import ddl
from toolkit.sql.attached import detach_owned_sequences
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import Sql, column_of
from toolkit.sql.stash import (
    drop_stash_if_empty,
    ensure_stash,
    forget,
    if_stash_exists,
    record_column,
    replay_attached_objects,
    replay_column_settings,
    replay_foreign_keys,
)

NamedForeignKey = tuple[str, ForeignKeySpec]
#: The measure of rows left NULL under ``on_missing="keep_null"`` (see ``finish_steps``).
_LEFT_NULL = "left_null"


def default_fk_name(table: str, column: str) -> str:
    """PostgreSQL's own default name for a single-column foreign key."""
    return f"{table}_{column}_fkey"


def foreign_key_names(
    runner: Runner, table: str, column: str, schema: str | None
) -> tuple[str, ...]:
    """The real names of ``table.column``'s foreign keys (online; offline none are known:
    dropping the column drops them)."""
    if runner.offline:
        return ()
    return tuple(fk.name for fk in reflect.foreign_keys(runner, table, column, schema))


def record_and_drop(
    table: str, column: str, fk_names: tuple[str, ...], *, schema: str | None
) -> list[Step]:
    """Record ``table.column``'s definition in the stash, drop its foreign keys by their
    real names and the column."""
    return runs(
        [
            ensure_stash(schema),
            forget("column", table, column, schema=schema),
            record_column(table, column, schema=schema),
            detach_owned_sequences(table, column, schema),
        ]
    ) + drop_with_foreign_keys(table, column, fk_names, schema=schema)


def record_carried_and_drop(
    table: str, column: str, fk_names: tuple[str, ...], *, schema: str | None
) -> list[Step]:
    """Drop ``table.column`` (a child's column a ``move_fk_to_child`` made) with its foreign
    keys, recording it first only if it carries more than that move makes (an index, a
    constraint, a comment, grants, a statistics target, a default, a collation), for the
    next ``move_fk_to_child`` to give back (``replay_carried``); else nothing is left."""
    return runs(
        [
            ensure_stash(schema),
            forget("column", table, column, schema=schema),
            record_column(table, column, schema=schema, only_if_carried=True),
            drop_stash_if_empty(schema),
        ]
    ) + drop_with_foreign_keys(table, column, fk_names, schema=schema)


def replay_carried(table: str, column: str, type_text: str, *, schema: str | None) -> list[Step]:
    """Give ``table.column`` (just made, filled, constrained) what ``record_carried_and_drop``
    recorded, if anything, and forget the record (decided when the script runs)."""
    return runs(
        [
            replay_column_settings(table, column, type_text, schema=schema),
            replay_attached_objects(table, column, schema=schema),
            if_stash_exists(forget("column", table, column, schema=schema), schema),
        ]
    )


def drop_with_foreign_keys(
    table: str, column: str, fk_names: tuple[str, ...], *, schema: str | None
) -> list[Step]:
    """Drop ``table.column``'s foreign keys (by their real names) and the column."""
    drops = [ddl.drop_constraint(table, name, schema=schema) for name in fk_names]
    return runs([*drops, ddl.drop_column(table, column, schema=schema)])


def forget_recorded(
    table: str, column: str, *, schema: str | None, stash: bool | None
) -> list[Step]:
    """Remove ``table.column``'s record and the stash table if nothing else is in it.

    ``stash``: whether the stash exists (online), None offline (decided when the script runs).
    """
    if stash is None:
        first = if_stash_exists(forget("column", table, column, schema=schema), schema)
    elif stash:
        first = forget("column", table, column, schema=schema)
    else:
        return []
    return runs([first, drop_stash_if_empty(schema)])


@dataclass(frozen=True)
class ColumnPlan:
    """How a dropped column comes back: type, nullability, default, foreign keys."""

    table: str
    column: str
    schema: str | None
    type_text: str
    nullable: bool
    default: str | None = None
    explicit_fks: tuple[NamedForeignKey, ...] = ()
    recorded_fks: tuple[tuple[str, str], ...] = ()
    recorded_refs: tuple[tuple[str | None, str, str], ...] = ()
    replay_fks: bool = False
    #: what was attached to the column (online, from the record), its collation, and
    #: offline whether to replay the record's attached objects when the script runs
    attached: tuple[str, ...] = ()
    collation: str | None = None
    replay_attached: bool = False
    #: the recorded NOT NULL constraint's (name, definition) (PostgreSQL 18, online)
    not_null_constraint: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        # Build the DDL once now: a name PostgreSQL would truncate fails before any change.
        self.add()
        self.constraints()

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}"

    def referents(self) -> list[tuple[str | None, str, str]]:
        """``(schema, table, key)`` every value must exist in (known foreign keys only)."""
        found = [
            (spec.referent_schema, spec.referent_table, spec.referent_columns[0])
            for _, spec in self.explicit_fks
            if len(spec.referent_columns) == 1
        ]
        return found + list(self.recorded_refs)

    def referenced_tables(self) -> list[tuple[str | None, str]]:
        """``(schema, table)`` of every known foreign key of the column."""
        found = [(spec.referent_schema, spec.referent_table) for _, spec in self.explicit_fks]
        return found + [(schema, table) for schema, table, _ in self.recorded_refs]

    def add(self) -> Sql:
        """Add the column, nullable and empty (filled next), in its recorded collation."""
        return ddl.add_column(
            self.table, self.column, self.type_text, schema=self.schema, collation=self.collation
        )

    def constraints(self) -> list[Sql]:
        """The foreign keys, after the fill."""
        steps = [
            ddl.add_foreign_key(self.table, [self.column], name, spec, schema=self.schema)
            for name, spec in self.explicit_fks
        ]
        steps += [
            ddl.add_constraint_definition(self.table, name, definition, schema=self.schema)
            for name, definition in self.recorded_fks
        ]
        if self.replay_fks:
            steps.append(replay_foreign_keys(self.table, self.column, schema=self.schema))
        # Indexes, constraints, statistics, grants, comment: once the column is filled.
        steps += [sql.SQL(statement) for statement in self.attached]
        if self.replay_attached:
            steps.append(replay_attached_objects(self.table, self.column, schema=self.schema))
        return steps

    def set_not_null(self) -> Sql:
        """NOT NULL, under the recorded constraint name if PostgreSQL 18 recorded one
        (offline the record renames it when the script runs: ``replay_attached_objects``)."""
        if self.not_null_constraint is None:
            return ddl.set_not_null(self.table, self.column, schema=self.schema)
        name, definition = self.not_null_constraint
        return ddl.add_constraint_definition(self.table, name, definition, schema=self.schema)

    def finish_steps(self, policy: MissingPolicy, *, offline: bool) -> list[Step]:
        """After the fill: the missing-value policy, then default, NOT NULL, foreign keys.

        ``filled`` tallies rows given the policy's fill value; under ``keep_null`` the
        column becomes NOT NULL only if no row was left NULL (decided in the database
        offline, by a measure online).
        """
        table, column, schema = self.table, self.column, self.schema
        steps: list[Step] = []
        not_null: list[Step] = []
        if not self.nullable:
            not_null = [Run(self.set_not_null())]
        if policy.mode == "fill" and not self.nullable:
            assert policy.fill_value is not None
            fill = ddl.fill_nulls(table, column, policy.fill_value, self.type_text, schema=schema)
            steps.append(Run(fill, tally="filled"))
        elif policy.mode == "keep_null" and not self.nullable and offline:
            not_null = [Run(ddl.set_not_null_if_complete(table, column, schema=schema))]
        elif policy.mode == "keep_null" and not self.nullable:
            null = sql.SQL("{} IS NULL").format(column_of("t", column))
            steps.append(Measure(ddl.count_rows(table, null, schema=schema), _LEFT_NULL))
            not_null = [OnlyIfZero(_LEFT_NULL, Run(self.set_not_null()))]
        if self.default is not None:
            steps.append(Run(ddl.set_default(table, column, self.default, schema=schema)))
        if self.replay_attached:
            steps.append(Run(replay_column_settings(table, column, self.type_text, schema=schema)))
        return steps + not_null + runs(self.constraints())

    def finish_report(
        self, policy: MissingPolicy, tallies: Mapping[str, int]
    ) -> tuple[dict[str, int], list[str]]:
        """The counts and notes of ``finish_steps`` (online)."""
        counts: dict[str, int] = {}
        notes: list[str] = []
        if "filled" in tallies:
            counts["filled"] = tallies["filled"]
            notes.append(
                f"{tallies['filled']} row(s) with nothing to restore got {policy.fill_value}"
            )
        if tallies.get(_LEFT_NULL):
            notes.append(
                f"{tallies[_LEFT_NULL]} row(s) have nothing to restore: {self.where} left nullable"
                " (on_missing='keep_null')"
            )
        return counts, notes


def resolve_column(
    runner: Runner,
    table: str,
    column: str,
    *,
    schema: str | None,
    type_text: str | None,
    nullable: bool | None,
    foreign_key: NamedForeignKey | None,
    fk_args: ForeignKeyArgs,
    nullable_default: bool = True,
    fallback_type: Callable[[], str | None] = lambda: None,
    fallback_fk: Callable[[], NamedForeignKey | None] = lambda: None,
) -> ColumnPlan:
    """Decide how ``table.column`` comes back (see the module docstring for the order).

    ``foreign_key`` is what ``fk_args`` describe (``referent_table`` given); with a
    record, the recorded foreign keys are re-created (every option, every key) and an
    argument contradicting the record is refused. ``nullable_default``: with neither an
    argument nor a record."""
    rec = None if runner.offline else reflect.recorded(runner, table, column, schema)
    if rec is not None:
        where = f"{table}.{column}"
        refuse_contradictions(
            runner, where, rec, type_text=type_text, nullable=nullable, fk=fk_args
        )
    if type_text is None and rec is not None:
        type_text = rec.type_text
    if type_text is None and not runner.offline:
        type_text = fallback_type()
    if type_text is None:
        message = f"{runner.operation}: the type of {table}.{column} is unknown: pass type_="
        if runner.offline:
            raise OfflineModeError(message + " (offline the stash's record cannot be read)")
        raise UsageError(message + " (nothing was recorded for it)")
    if nullable is None:
        nullable = rec.nullable if rec is not None else nullable_default
    explicit: tuple[NamedForeignKey, ...] = ()
    if rec is None and foreign_key is not None:
        explicit = (foreign_key,)
    elif rec is None and not runner.offline:
        found = fallback_fk()
        explicit = (found,) if found is not None else ()
    return ColumnPlan(
        table=table,
        column=column,
        schema=schema,
        type_text=type_text,
        nullable=nullable,
        default=rec.default if rec is not None else None,
        explicit_fks=explicit,
        recorded_fks=rec.foreign_keys if rec is not None else (),
        recorded_refs=rec.references if rec is not None else (),
        replay_fks=runner.offline and foreign_key is None,
        attached=rec.attached if rec is not None else (),
        collation=rec.collation if rec is not None else None,
        replay_attached=runner.offline,
        not_null_constraint=rec.not_null if rec is not None and not nullable else None,
    )
