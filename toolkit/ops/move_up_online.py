"""``move_fk_to_parent`` online: the steps of each phase (``toolkit.ops.online``); the SQL
is ``toolkit.sql.family_up_online``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.errors import UsageError
from toolkit.ops.column_online import online_column
from toolkit.ops.columns import forget_recorded, record_carried_and_drop
from toolkit.ops.steps import Measure, OnlineSteps, Run, TableLock, runs
from toolkit.sql import ddl
from toolkit.sql.family_up_online import UpMirror
from toolkit.sql.idents import Sql
from toolkit.sql.online import create_mirror, drop_mirror

if TYPE_CHECKING:
    from toolkit.ops.move_fk_to_parent import ToParentPlan


def up_mirror(plan: ToParentPlan) -> UpMirror:
    return UpMirror(plan.family, plan.slot, plan.column, plan.order_by, plan.target.type_text)


def _refuse(plan: ToParentPlan) -> None:
    """Rows written during the run would escape a fill: refused before any change."""
    target = plan.target
    if not target.nullable and plan.policy.mode != "refuse":
        raise UsageError(
            f"online mode: {target.where} with on_missing={plan.policy.mode!r}: run this"
            " operation without online mode (online, rows with nothing to restore are"
            " refused before any change)"
        )


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
    kept column, the child's column, and forgets the key and the record. The column's
    constraints and attached objects as ``toolkit.ops.column_online`` sorts them."""
    _refuse(plan)
    family, slot, target, schema = plan.family, plan.slot, plan.target, plan.family.schema
    mirror = up_mirror(plan)
    finish = online_column(target)
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
        constraints=finish.constraints,
        indexes=finish.indexes,
        not_null=finish.not_null,
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
            *finish.contract,
            *record_carried_and_drop(table, column, plan.fk_names, schema=schema),
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
