"""Decide which differences of a project step are problems and which are allowed losses."""

from __future__ import annotations

from toolkit.roundtrip.report import LossCheck
from toolkit.roundtrip.settings import AllowedLoss
from toolkit.roundtrip.steps import Comparison, row_summary
from toolkit.verify import RowChanges, SchemaDifference


def judge(
    comparison: Comparison, allowances: tuple[AllowedLoss, ...]
) -> tuple[list[LossCheck], list[str]]:
    """The losses a step's comparison found, each allowed or not, and the problems.

    A table's changes are allowed when an allowance names the table, or names columns
    and the changes stay within them (no row vanished or appeared, no other column changed).
    """
    problems = [
        d.describe()
        for d in comparison.diff.schema_differences
        if not _schema_allowed(d, allowances)
    ]
    losses: list[LossCheck] = []
    changed = {r.table: r for r in comparison.rows if not r.ok}
    for table, changes in sorted(changed.items()):
        allowed = [a for a in allowances if a.table == table]
        losses += [_allowed_check(changes, a) for a in allowed]
        if allowed and _confined(changes, allowed):
            continue
        uncovered = [
            c.column for c in changes.columns if not any(a.covers(table, c.column) for a in allowed)
        ]
        losses.append(
            LossCheck(
                table=table,
                found=changes.not_restored or changes.unexpected,
                declared=False,
                column=", ".join(uncovered) or None,
            )
        )
        problems.append(row_summary(changes))
    losses += [_allowed_check(None, a) for a in allowances if a.table not in changed]
    problems += [
        d.describe()
        for d in comparison.diff.data_differences
        if d.table not in changed and not any(a.covers(d.table) for a in allowances)
    ]
    return losses, problems


def _schema_allowed(difference: SchemaDifference, allowances: tuple[AllowedLoss, ...]) -> bool:
    table = difference.name if difference.kind == "table" else difference.table
    if table is None:
        return False
    column = difference.name if difference.kind == "column" else None
    return any(a.covers(table, column) for a in allowances)


def _confined(changes: RowChanges, allowed: list[AllowedLoss]) -> bool:
    if any(a.column is None for a in allowed):
        return True
    if changes.vanished is None or changes.vanished or changes.appeared:
        return False
    columns = {a.column for a in allowed}
    return all(c.column in columns for c in changes.columns)


def _allowed_check(changes: RowChanges | None, allowance: AllowedLoss) -> LossCheck:
    if changes is None:
        found = 0
    elif allowance.column is None:
        found = changes.not_restored
    else:
        found = next((c.rows for c in changes.columns if c.column == allowance.column), 0)
    return LossCheck(
        table=allowance.table,
        found=found,
        declared=True,
        column=allowance.column,
        reason=allowance.reason,
    )
