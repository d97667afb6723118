"""Dropping a column while recording it, and re-creating it exactly: the shared steps.

Operations that drop an FK column (promote, stash, move to child) record its definition
in the stash first; their inverses resolve the definition to re-create in one order:
an explicit argument, else what was recorded (online), else what the operation can
reflect from elsewhere (the junction's or the child's column), else offline a replay of
the recorded foreign keys when the script runs, or a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from toolkit.errors import OfflineModeError, UsageError
from toolkit.ops import reflect
from toolkit.ops.policies import MissingPolicy
from toolkit.ops.runtime import Runner
from toolkit.sql import ddl
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import Sql, column_of
from toolkit.sql.stash import (
    drop_stash_if_empty,
    ensure_stash,
    forget,
    if_stash_exists,
    record_column,
    replay_foreign_keys,
)

NamedForeignKey = tuple[str, ForeignKeySpec]


def default_fk_name(table: str, column: str) -> str:
    """PostgreSQL's own default name for a single-column foreign key."""
    return f"{table}_{column}_fkey"


def record_and_drop(runner: Runner, table: str, column: str, *, schema: str | None) -> list[str]:
    """Record ``table.column``'s definition in the stash, drop its foreign keys by their
    real names (online) and the column; returns the names of the keys dropped."""
    runner.run(ensure_stash(schema))
    runner.run(forget("column", table, column, schema=schema))
    runner.run(record_column(table, column, schema=schema))
    return drop_with_foreign_keys(runner, table, column, schema=schema)


def drop_with_foreign_keys(
    runner: Runner, table: str, column: str, *, schema: str | None
) -> list[str]:
    """Drop ``table.column`` and its foreign keys (by their real names, looked up online)."""
    dropped = []
    if not runner.offline:
        for fk in reflect.foreign_keys(runner, table, column, schema):
            runner.run(ddl.drop_constraint(table, fk.name, schema=schema))
            dropped.append(fk.name)
    # Offline the names cannot be looked up; dropping the column drops its constraints.
    runner.run(ddl.drop_column(table, column, schema=schema))
    return dropped


def forget_recorded(runner: Runner, table: str, column: str, *, schema: str | None) -> None:
    """Remove ``table.column``'s record and the stash table if nothing else is in it."""
    if runner.offline:
        runner.run(if_stash_exists(forget("column", table, column, schema=schema), schema))
    elif reflect.stash_exists(runner, schema):
        runner.run(forget("column", table, column, schema=schema))
    else:
        return
    runner.run(drop_stash_if_empty(schema))


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

    def __post_init__(self) -> None:
        # Build the DDL once now: a name PostgreSQL would truncate fails before any change.
        self.add()
        self.finish()

    def referents(self) -> list[tuple[str | None, str, str]]:
        """``(schema, table, key)`` every value must exist in (known foreign keys only)."""
        found = [
            (spec.referent_schema, spec.referent_table, spec.referent_columns[0])
            for _, spec in self.explicit_fks
            if len(spec.referent_columns) == 1
        ]
        return found + list(self.recorded_refs)

    def add(self) -> Sql:
        """Add the column, nullable and empty (filled next)."""
        return ddl.add_column(self.table, self.column, self.type_text, schema=self.schema)

    def finish(self, *, not_null: bool | None = None) -> list[Sql]:
        """Default, NOT NULL (``not_null`` overrides the plan) and foreign keys, after the fill."""
        steps = []
        if self.default is not None:
            steps.append(ddl.set_default(self.table, self.column, self.default, schema=self.schema))
        if not_null if not_null is not None else not self.nullable:
            steps.append(ddl.set_not_null(self.table, self.column, schema=self.schema))
        steps += [
            ddl.add_foreign_key(self.table, [self.column], name, spec, schema=self.schema)
            for name, spec in self.explicit_fks
        ]
        steps += [
            ddl.add_constraint_definition(self.table, name, definition, schema=self.schema)
            for name, definition in self.recorded_fks
        ]
        if self.replay_fks:
            steps.append(replay_foreign_keys(self.table, self.column, schema=self.schema))
        return steps


def finish_column(
    runner: Runner, plan: ColumnPlan, policy: MissingPolicy
) -> tuple[dict[str, int], list[str]]:
    """After the fill: apply the missing-value policy, then default, NOT NULL, foreign keys.

    Returns the counts (``filled``: rows given the policy's fill value) and the notes.
    """
    where = f"{plan.table}.{plan.column}"
    counts: dict[str, int] = {}
    notes: list[str] = []
    not_null: bool | None = None
    if policy.mode == "fill" and not plan.nullable:
        assert policy.fill_value is not None
        filled = runner.run(
            ddl.fill_nulls(
                plan.table, plan.column, policy.fill_value, plan.type_text, schema=plan.schema
            )
        )
        counts["filled"] = filled
        if not runner.offline:
            notes.append(f"{filled} row(s) with nothing to restore got {policy.fill_value}")
    elif policy.mode == "keep_null" and not plan.nullable:
        not_null = False
        if runner.offline:
            runner.run(ddl.set_not_null_if_complete(plan.table, plan.column, schema=plan.schema))
        else:
            missing = int(
                runner.scalar(
                    ddl.count_rows(
                        plan.table,
                        sql.SQL("{} IS NULL").format(column_of("t", plan.column)),
                        schema=plan.schema,
                    )
                )
            )
            not_null = missing == 0
            if missing:
                notes.append(
                    f"{missing} row(s) have nothing to restore: {where} left nullable"
                    " (on_missing='keep_null')"
                )
    runner.run_all(plan.finish(not_null=not_null))
    return counts, notes


def resolve_plan(
    runner: Runner,
    table: str,
    column: str,
    *,
    schema: str | None,
    type_text: str | None,
    nullable: bool | None,
    foreign_key: NamedForeignKey | None,
    no_foreign_key: bool = False,
    fallback_type: Callable[[], str | None] = lambda: None,
    fallback_fk: Callable[[], NamedForeignKey | None] = lambda: None,
) -> ColumnPlan:
    """Decide how ``table.column`` comes back (see the module docstring for the order)."""
    rec = None if runner.offline else reflect.recorded(runner, table, column, schema)
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
        nullable = rec.nullable if rec is not None else True
    explicit: tuple[NamedForeignKey, ...] = ()
    recorded: tuple[tuple[str, str], ...] = ()
    refs: tuple[tuple[str | None, str, str], ...] = ()
    replay = False
    if no_foreign_key:
        pass
    elif foreign_key is not None:
        explicit = (foreign_key,)
    elif rec is not None:
        recorded, refs = rec.foreign_keys, rec.references
    elif runner.offline:
        replay = True
    else:
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
        recorded_fks=recorded,
        recorded_refs=refs,
        replay_fks=replay,
    )
