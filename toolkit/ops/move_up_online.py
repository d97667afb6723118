"""``move_fk_to_parent`` online: the steps of each phase (``toolkit.ops.online``); the SQL
is ``toolkit.sql.family_up_online``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.errors import UsageError
from toolkit.ops.columns import drop_with_foreign_keys, forget_recorded
from toolkit.ops.steps import Measure, NotNull, OnlineSteps, Run, Step, TableLock, runs
from toolkit.sql import ddl
from toolkit.sql.family_up_online import UpMirror
from toolkit.sql.idents import Sql
from toolkit.sql.online import create_mirror, drop_mirror

if TYPE_CHECKING:
    from toolkit.ops.move_fk_to_parent import ToParentPlan


def up_mirror(plan: ToParentPlan) -> UpMirror:
    return UpMirror(plan.family, plan.slot, plan.column, plan.order_by, plan.target.type_text)


def _refuse(plan: ToParentPlan) -> None:
    """What online mode cannot do without a long lock or a second pass: refused before
    any change."""
    target = plan.target
    if not target.nullable and plan.policy.mode != "refuse":
        raise UsageError(
            f"online mode: {target.where} with on_missing={plan.policy.mode!r}: run this"
            " operation without online mode"
        )
    if target.attached or target.replay_attached:
        raise UsageError(
            f"online mode: {target.where} comes back with indexes, constraints or settings"
            " recorded with it; run this operation without online mode"
        )


def _constraints(plan: ToParentPlan) -> tuple[list[tuple[str, str, Sql]], list[Step]]:
    """The target's foreign keys: validated ones NOT VALID then validated, a recorded
    NOT VALID one as recorded at the contract."""
    target = plan.target
    table, column, schema = target.table, target.column, target.schema
    found = [
        (table, name, ddl.add_foreign_key(table, [column], name, spec, schema=schema))
        for name, spec in target.explicit_fks
    ]
    contract: list[Step] = []
    for name, definition in target.recorded_fks:
        added = ddl.add_constraint_definition(table, name, definition, schema=schema)
        if definition.endswith(" NOT VALID"):
            contract.append(Run(added))
        else:
            found.append((table, name, added))
    if target.default is not None:
        contract.append(Run(ddl.set_default(table, column, target.default, schema=schema)))
    return found, contract


def _mirrors(plan: ToParentPlan, *, drop: bool) -> list[Sql]:
    family, mirror, schema = plan.family, up_mirror(plan), plan.family.schema
    slot = plan.slot
    if drop:
        return drop_mirror(family.child, plan.column, schema=schema) + drop_mirror(
            family.parent, slot.column, schema=schema
        )
    child = create_mirror(
        family.child,
        plan.column,
        schema=schema,
        timing="AFTER",
        events=("INSERT", "UPDATE", "DELETE"),
        columns=mirror.update_columns(),
        body=mirror.child_body(),
    )
    parent = create_mirror(
        family.parent,
        slot.column,
        schema=schema,
        timing="BEFORE",
        events=("INSERT", "UPDATE"),
        columns=(slot.jsonb_column,),
        body=mirror.parent_body(),
    )
    return child + parent


def up_online_steps(plan: ToParentPlan) -> OnlineSteps:
    """Expand: the parent's column and the kept column, the mirrors; batches by parent;
    the foreign keys and NOT NULL without long locks; the contract drops the mirrors, the
    kept column, the child's column, and forgets the key and the record."""
    _refuse(plan)
    family, slot, target, schema = plan.family, plan.slot, plan.target, plan.family.schema
    mirror = up_mirror(plan)
    constraints, finish = _constraints(plan)
    drop_mirrors = runs(_mirrors(plan, drop=True))
    parent = TableLock(schema, family.parent, "ACCESS EXCLUSIVE")
    child = TableLock(schema, family.child, "ACCESS EXCLUSIVE")
    referents = [TableLock(s, t) for s, t in plan.dropped_references()]
    table, column = plan.table, plan.column
    return OnlineSteps(
        table=family.parent,
        column=slot.column,
        schema=schema,
        keys=(family.parent_key,),
        expand_locks=(parent, TableLock(schema, family.child)),
        expand=(
            Run(target.add()),
            Run(ddl.add_column(family.parent, mirror.kept, target.type_text, schema=schema)),
            *runs(_mirrors(plan, drop=False)),
        ),
        batch=lambda where: runs(mirror.batch(where)),
        constraints=tuple(constraints),
        not_null=()
        if target.nullable
        else (NotNull(family.parent, target.column, target.set_not_null()),),
        measures=(
            Measure(mirror.count_moved(), "moved"),
            Measure(mirror.count_disagreeing(), "disagree"),
            Measure(mirror.count_overridden(), "overridden"),
            Measure(mirror.count_restored(), "restored"),
            Measure(mirror.count_missing(), "missing"),
        ),
        contract_locks=(parent, child, *referents),
        contract=(
            *drop_mirrors,
            Run(mirror.drop_kept()),
            Run(slot.unregister_key()),
            Run(slot.forget_marks_if_nothing_stashed()),
            *finish,
            *drop_with_foreign_keys(table, column, plan.fk_names, schema=schema),
            *forget_recorded(target.table, target.column, schema=schema, stash=True),
        ),
        # Every value moved out of the JSONB is in the kept column: back under the key.
        abort=(
            *drop_mirrors,
            Run(mirror.kept_slot.write_values()),
            Run(mirror.drop_kept()),
            Run(ddl.drop_column_if_exists(family.parent, target.column, schema=schema)),
        ),
        writes_source=True,
    )
