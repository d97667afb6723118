"""What every operation is: an immutable definition, a frozen plan, and one way to run it.

An operation is a frozen dataclass (``PromoteFkToJunctionOp``, ...): its fields, with their
defaults, are written once. ``@lossless_operation("name")`` derives ``op.<name>(...)`` from
it (the proxy takes exactly the dataclass's arguments and builds it) and registers its
implementation, which runs ``resolve`` then ``Plan.run``.

- ``resolve(runner)`` turns reflection (online) or the arguments (offline) into a frozen
  ``Plan``: everything apply needs, nothing left to look up. It is the only place where
  online and offline differ;
- ``Plan.checks()`` are the refusals (``toolkit.sql.checks``), run before any change;
- ``Plan.steps()`` is the ordered list of statements (``toolkit.ops.steps``), run in one
  place by the ``Runner``; ``Plan.report()`` turns what they counted into the result.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from alembic.operations import MigrateOperation, Operations

from toolkit.errors import UsageError
from toolkit.ops.guards import refuse_dependents, refuse_hidden_rows, refuse_inheritance
from toolkit.ops.lock_prelude import take_locks
from toolkit.ops.results import OpResult
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import OnlineSteps, Run, Step, TableLock
from toolkit.sql import triggers
from toolkit.sql.checks import CheckSet

#: What the refusal of an operation without an online mode says (the round trip, asked
#: for online mode, runs such a revision as usual).
NO_ONLINE_MODE = "has no online mode yet"


class FromRecord(enum.Enum):
    """The type of ``FROM_RECORD``."""

    FROM_RECORD = "from the record"

    def __repr__(self) -> str:
        return "FROM_RECORD"


#: "Take it from the record": the definition the stash recorded when the column was
#: dropped (online), else what the operation can reflect (the junction's or the child's
#: column), else the documented fallback. The default of every argument an inverse can
#: learn from the record, and what ``reverse()`` passes.
FROM_RECORD = FromRecord.FROM_RECORD


def given(value: Any) -> Any:
    """``value``, or None when it is ``FROM_RECORD`` (left for resolve to decide)."""
    return None if value is FROM_RECORD else value


@dataclass(frozen=True)
class Plan:
    """What ``resolve`` decided for one operation: frozen, complete, no lookups left.

    ``table``/``column``: where the data comes from (a declared loss shows there).
    """

    operation: str
    offline: bool
    table: str
    column: str

    def locks(self) -> list[TableLock]:
        """Every table this operation locks before its checks, with the mode."""
        raise NotImplementedError

    def dropped_references(self) -> list[tuple[str | None, str]]:
        """``(schema, table)`` referenced by the foreign keys the steps drop, as far as the
        arguments tell (offline); online the lock prelude also asks the catalog."""
        return []

    def checks(self) -> list[CheckSet]:
        """The refusals, run (online) or printed as guards (offline) before any change."""
        return []

    def dropped_columns(self) -> list[tuple[str | None, str, str]]:
        """``(schema, table, column)`` of each column the steps drop and record."""
        return []

    def refuse(self, runner: Runner) -> None:
        """The refusals about the schema (``toolkit.ops.guards``), before any change:
        objects using a dropped column that cannot be carried, row-level security hiding
        rows of a locked table, table inheritance (a locked table with children, a
        dropped column inherited from a parent). Online they raise; offline their guards
        are printed."""
        tables = [(lock.schema, lock.table) for lock in self.locks()]
        steps = refuse_hidden_rows(runner, tables)
        dropped = {(schema, table): column for schema, table, column in self.dropped_columns()}
        for schema, table in tables:
            steps += refuse_inheritance(runner, table, schema, dropped.get((schema, table)))
        for schema, table, column in self.dropped_columns():
            steps += refuse_dependents(runner, table, column, schema)
        runner.execute(steps)

    def steps(self) -> list[Step]:
        """The ordered statements that make the change."""
        raise NotImplementedError

    def report(self, tallies: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
        """The result's counts and notes from what the steps counted (online only)."""
        raise NotImplementedError

    def online_steps(self) -> OnlineSteps:
        """What this operation does in each phase of online mode (``toolkit.ops.online``)."""
        raise UsageError(f"{self.operation} {NO_ONLINE_MODE}: run it without online mode")

    def run(self, runner: Runner, *, description: str | None = None) -> OpResult:
        """Lock (the prelude), check, apply: one operation on its own."""
        take_locks(runner, [self], description=description or self.operation)
        self.refuse(runner)
        for checks in self.checks():
            runner.check(checks)
        return self.apply(runner, description=description)

    def apply(
        self, runner: Runner, *, checked: bool = False, description: str | None = None
    ) -> OpResult:
        """Run the steps and publish the result. ``checked``: the checks the foreign keys
        would do were run already (a batch runs every check before the first change)."""
        tables = [(lock.schema, lock.table) for lock in self.locks()]
        steps = [
            *(Run(triggers.quiet(table, schema)) for schema, table in tables),
            *self.steps(),
            *(Run(triggers.restore(table, schema)) for schema, table in tables),
        ]
        tallies = runner.execute(steps, checked=checked)
        counts, notes = self.report(tallies) if not runner.offline else ({}, [])
        return runner.result(
            self.operation, self.table, self.column, counts, notes, description=description
        )


def name_of(schema: str | None, table: str, column: str | None = None) -> str:
    """A footprint name (see ``LosslessOperation.footprint``)."""
    qualified = f"{schema}.{table}" if schema else table
    return qualified if column is None else f"{qualified}.{column}"


def jsonb_key_name(schema: str | None, table: str, jsonb_column: str, key: str) -> str:
    """The footprint name of one key of a JSONB column."""
    return name_of(schema, table, f"{jsonb_column}[{key!r}]")


class LosslessOperation(MigrateOperation):
    """Base of the six operations (each a frozen dataclass)."""

    #: The ``op.<name>`` the operation is registered as.
    name: ClassVar[str]
    #: Online mode asked for by the operation's argument (None: as ``-x online`` says);
    #: a field of the operations that have an online mode.
    online: bool | None = None

    def resolve(self, runner: Runner) -> Plan:
        """Reflection (online) or arguments (offline) into a frozen plan."""
        raise NotImplementedError

    def reverse(self) -> LosslessOperation:
        """The inverse operation; whatever the record knows is passed as ``FROM_RECORD``."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for logs and reports."""
        raise NotImplementedError

    def progress_key(self) -> tuple[str, str, str | None]:
        """``(table, column, schema)`` naming this operation's row in online mode's
        progress table (``toolkit.ops.online``): by default its ``table``, ``column`` and
        ``schema`` fields; operations whose fields are named otherwise override it."""
        fields: Any = self
        return str(fields.table), str(fields.column), fields.schema

    def footprint(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(reads, changes)``, from the arguments alone: what resolve and the checks read,
        what apply changes. Names are ``schema.table`` (a table created or dropped),
        ``schema.table.column`` (a column added, dropped or written) and
        ``schema.table.jsonb['key']`` (one key of a JSONB: keys are independent, a stash
        only turns NULL into objects). A batch refuses an operation that reads what an
        earlier one changes (``toolkit.ops.batch``): its plan would be stale. Names are
        compared as written (``schema=None`` and ``schema="public"`` differ).
        """
        raise NotImplementedError


_O = TypeVar("_O", bound=LosslessOperation)


def lossless_operation(name: str) -> Callable[[type[_O]], type[_O]]:
    """Register a frozen-dataclass operation as ``op.<name>``.

    The proxy is derived from the class: ``op.<name>(*args, **kwargs)`` is
    ``operations.invoke(cls(*args, **kwargs))``, so names, defaults and kinds of the
    arguments exist once, in the dataclass (``toolkit/op.pyi`` spells them out for type
    checkers and a test keeps it current).
    """

    def register(op_cls: type[_O]) -> type[_O]:
        def proxy(cls: type[_O], operations: Operations, *args: Any, **kwargs: Any) -> Any:
            return operations.invoke(cls(*args, **kwargs))

        proxy.__name__ = name
        proxy.__doc__ = op_cls.__doc__
        op_cls.name = name
        setattr(op_cls, name, classmethod(proxy))
        Operations.register_operation(name)(op_cls)
        Operations.implementation_for(op_cls)(_run_one)
        return op_cls

    return register


def _run_one(operations: Operations, operation: LosslessOperation) -> OpResult:
    from toolkit.ops import online

    runner = Runner(operations, operation.name)
    if online.wanted(operations, operation.online):
        return online.run_online(runner, [operation])[0]
    online.refuse_if_under_way(runner, [operation])
    return operation.resolve(runner).run(runner, description=operation.describe())
