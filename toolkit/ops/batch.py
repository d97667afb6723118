"""Several operations as one: every check before the first change, locks in one order.

``op.run_lossless(StashColumnInJsonbOp(...), PromoteFkToJunctionOp(...), ...)`` (or
``run_lossless(operations, ...)``) runs, in a revision's transaction:

1. a refusal (``UsageError``) if an operation reads what an earlier one changes
   (``LosslessOperation.footprint``, from the arguments): its plan, made before that
   change, would be stale. Run such operations in separate calls;
2. ``resolve`` of every operation (reflection online, arguments offline), in order;
3. the lock prelude of every plan (``toolkit.ops.lock_prelude``): every table lock the
   steps need, merged per table to the strongest mode, taken in one global order (schema,
   then table name) within half of ``deadlock_timeout``;
4. every check of every plan, including those a new foreign key would otherwise do while
   it validates (except for the first operation's: a refusal there still comes before any
   change, after its savepoint is rolled back);
5. the steps of every plan, in order. Returns the results, also published one by one.

A refusal therefore comes before anything changed, whichever operation it concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alembic.operations import MigrateOperation, Operations

from toolkit.errors import UsageError
from toolkit.ops import online
from toolkit.ops.base import LosslessOperation, Plan
from toolkit.ops.lock_prelude import take_locks
from toolkit.ops.results import OpResult
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import CheckedByForeignKeys


@Operations.register_operation("run_lossless")
@dataclass(frozen=True, init=False)
class LosslessBatchOp(MigrateOperation):
    """Run ``operations`` as one: resolve all, lock all, check all, then apply each."""

    operations: tuple[LosslessOperation, ...]
    online: bool | None

    def __init__(self, *operations: LosslessOperation, online: bool | None = None) -> None:
        object.__setattr__(self, "operations", tuple(operations))
        object.__setattr__(self, "online", online)

    @classmethod
    def run_lossless(
        cls, operations: Operations, *lossless: LosslessOperation, online: bool | None = None
    ) -> list[OpResult]:
        """Resolve, lock, check every operation, then apply each (see ``toolkit.ops.batch``).

        ``online``: in phases that let the application write (``toolkit.ops.online``);
        None: as ``-x online`` says, or online if any operation asks for it."""
        results: list[OpResult] = operations.invoke(cls(*lossless, online=online))
        return results

    def reverse(self) -> LosslessBatchOp:
        """The inverses, in reverse order."""
        return LosslessBatchOp(
            *(o.reverse() for o in reversed(self.operations)), online=self.online
        )

    def describe(self) -> str:
        """One line per operation."""
        return "\n".join(o.describe() for o in self.operations)


def refuse_dependencies(operations: Sequence[LosslessOperation]) -> None:
    """``UsageError`` if an operation reads what an earlier one changes (``footprint``)."""
    changed: dict[str, LosslessOperation] = {}
    for operation in operations:
        reads, changes = operation.footprint()
        stale = sorted(name for name in reads if name in changed)
        if stale:
            raise UsageError(
                f"run_lossless: {operation.describe()!r} reads {stale[0]}, which"
                f" {changed[stale[0]].describe()!r} changes before it: its checks would run"
                " on data that is about to change; run them in separate calls"
            )
        changed.update(dict.fromkeys(changes, operation))


def plan_all(runner: Runner, operations: Sequence[LosslessOperation]) -> list[Plan]:
    """Every operation's plan, after refusing operations that depend on each other."""
    refuse_dependencies(operations)
    return [o.resolve(runner.named(o.name)) for o in operations]


@Operations.implementation_for(LosslessBatchOp)
def run_lossless(operations: Operations, batch: LosslessBatchOp) -> list[OpResult]:
    """Implementation of ``op.run_lossless`` (see the module docstring)."""
    runner = Runner(operations, "run_lossless")
    asked = batch.online
    if asked is None and any(o.online for o in batch.operations):
        asked = True
    if online.wanted(operations, asked):
        refuse_dependencies(batch.operations)
        return online.run_online(runner, batch.operations)
    online.refuse_if_under_way(runner, batch.operations)
    plans = plan_all(runner, batch.operations)
    take_locks(runner, plans, description=f"run_lossless({batch.describe()!r})")
    for index, plan in enumerate(plans):
        named = runner.named(plan.operation)
        plan.refuse(named)
        for checks in plan.checks():
            named.check(checks)
        if index > 0:
            for step in plan.steps():
                if isinstance(step, CheckedByForeignKeys):
                    named.check(step.checks)
    return [
        plan.apply(runner.named(plan.operation), checked=index > 0, description=o.describe())
        for index, (o, plan) in enumerate(zip(batch.operations, plans, strict=True))
    ]
