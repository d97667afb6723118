"""Turn the commands' result objects into text a person reads, or JSON a machine reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toolkit.commands import (
    CurrentReport,
    HistoryReport,
    MigrationReport,
    PreflightReport,
    Refusal,
    RoundTripRun,
    ScenarioInfo,
    SeedReport,
    TimedResult,
    with_x,
)
from toolkit.commands import revision_ids as ids
from toolkit.commands.lock_watch import HeldLock, sql_mode
from toolkit.ops.results import COUNT_KEYS
from toolkit.text_table import table

#: Always shown, even at 0: a reader must see that nothing was lost, not guess it.
_ALWAYS = ("moved", "stashed", "restored", "collapsed", "lost")


def _count_keys(operations: Sequence[TimedResult]) -> list[str]:
    used = {k for t in operations for k, v in t.result.counts.items() if v}
    return [k for k in COUNT_KEYS if k in _ALWAYS or k in used]


def operations_table(operations: Sequence[TimedResult], refused: Refusal | None = None) -> str:
    """Per operation: table, counts, seconds, rows per second; a refusal as a last row."""
    keys = _count_keys(operations)
    extra = ["refused"] if refused else []
    headers = ["table", "operation", *keys, *extra, "seconds", "rows/s"]
    rows: list[list[object]] = [
        [
            t.result.where,
            t.result.operation,
            *(t.result.counts.get(k, 0) for k in keys),
            *(None for _ in extra),
            t.seconds,
            t.rows_per_second,
        ]
        for t in operations
    ]
    if refused is not None:
        where = f"{refused.table}.{refused.column}" if refused.column else refused.table
        rows.append([where, "refused", *(None for _ in keys), refused.count, None, None])
    return table(headers, rows)


def notes(operations: Sequence[TimedResult]) -> list[str]:
    """What the operations noted (a policy applied, a column left nullable), after a blank."""
    found = [
        f"note: {t.result.where} ({t.result.operation}): {note}"
        for t in operations
        for note in t.result.notes
    ]
    return ["", *found] if found else []


def migration(report: MigrationReport) -> str:
    """The summary of an upgrade or downgrade."""
    head = (
        f"{report.direction} {report.target} on database {report.database!r}: "
        f"{ids(report.before)} -> {ids(report.after)}{with_x(report.x)} in "
        f"{report.seconds:.2f}s"
    )
    if report.before == report.after:
        return f"{head}\nnothing to do: already at {ids(report.after)}"
    if not report.operations:
        return f"{head}\nno toolkit operation ran (plain Alembic revisions: nothing counted)"
    lines = [head, "", operations_table(report.operations), *notes(report.operations)]
    if report.lost:
        lines += ["", f"declared loss: {report.lost:,} row(s) did not come through unchanged"]
    return "\n".join(lines)


def preflight(report: PreflightReport, *, locks: bool = False) -> str:
    """What a step would do, with the verdict last (``locks``: and the table locks)."""
    lines = [
        f"preflight {report.direction} {report.target} on database {report.database!r}: "
        f"{ids(report.before)} -> {_goal(report)}{with_x(report.x)} in "
        f"{report.seconds:.2f}s (rolled back: nothing changed)",
        "",
    ]
    if report.before == report.after and report.ok:
        lines.append(f"nothing to do: already at {ids(report.before)}")
    elif report.operations or report.refused:
        lines.append(operations_table(report.operations, report.refused))
        lines += notes(report.operations)
    else:
        lines.append("no toolkit operation reported counts (plain Alembic revisions)")
    if locks and report.locks:
        lines += ["", *locks_table(report.locks, report.operations)]
    lines += ["", f"verdict: {verdict(report)}"]
    return "\n".join(lines)


def locks_table(locks: Sequence[HeldLock], operations: Sequence[TimedResult]) -> list[str]:
    """The table locks a rolled-back run took: per table each stronger mode, the operation
    that took it, when, and for how long it was held."""
    return [
        "table locks (sampled every 50 ms; held until the rollback here, until the "
        "revision's commit in a real run):",
        table(
            ["table", "mode", "taken by", "at s", "held s", "waited s"],
            [
                [
                    f"{lk.schema}.{lk.table}",
                    sql_mode(lk.mode),
                    _taken_by(lk, operations),
                    f"{lk.first_s:.2f}",
                    f"{lk.held_s:.2f}",
                    f"{lk.waited_s:.2f}",
                ]
                for lk in locks
            ],
        ),
    ]


def _goal(report: PreflightReport) -> str:
    """The revision asked for, and the one a relative ``-1`` reached."""
    relative = report.revision[:1] in ("-", "+")
    if relative and report.refused is None and report.failure is None:
        return f"{report.revision} ({ids(report.after)})"
    return report.revision


def verdict(report: PreflightReport) -> str:
    """One line: would it succeed, lose data, be refused or fail."""
    if report.refused is not None:
        return f"REFUSED: {report.refused.message}"
    if report.failure is not None:
        return f"WOULD FAIL: {report.failure}"
    if report.lost:
        return f"DATA WOULD BE LOST: {report.lost:,} row(s) (declared by the operations)"
    if report.dropped:
        return "DATA WOULD BE DROPPED: " + "; ".join(d.describe() for d in report.dropped)
    return f"ok: would reach {ids(report.after)} and lose nothing"


def seeded(report: SeedReport) -> str:
    """Rows per table and the overall rate."""
    rate = f" ({report.rows_per_second:,.0f} rows/s)" if report.rows_per_second else ""
    lines = [
        f"seeded {report.target} on database {report.database!r} at {ids(report.revision)} "
        f"(--rows {report.rows} --seed {report.seed}): {report.total:,} rows in "
        f"{report.seconds:.2f}s{rate}",
    ]
    if report.prepared:
        lines.append(f"(the empty database was first upgraded to {report.prepared})")
    lines += ["", table(["table", "rows"], [[t.table, t.rows] for t in report.tables])]
    if report.notes:
        lines += ["", *(f"note: {n}" for n in report.notes)]
    return "\n".join(lines)


def current(report: CurrentReport) -> str:
    """The revision(s) the database is at, with markers."""
    if not report.current:
        return f"base (no revision applied to database {report.database!r})"
    lines = [_marked(r, report.heads, report.labels) for r in report.current]
    if set(report.current) != set(report.heads):
        lines.append(f"not at head: head is {ids(report.heads)}")
    return "\n".join(lines)


def history(report: HistoryReport) -> str:
    """Base first: id, parent(s), message, markers."""
    rows = [
        [
            r.revision,
            ids(r.down_revision),
            r.message.splitlines()[0] if r.message else "",
            _markers(r.revision, report.heads, report.labels),
        ]
        for r in report.revisions
    ]
    return table(["revision", "parent", "message", ""], rows)


def _markers(revision: str, heads: Sequence[str], labels: Mapping[str, str]) -> str:
    marks = [labels[revision]] if revision in labels else []
    if revision in heads:
        marks.append("head")
    return f"({', '.join(marks)})" if marks else ""


def _marked(revision: str, heads: Sequence[str], labels: Mapping[str, str]) -> str:
    marks = _markers(revision, heads, labels)
    return f"{revision} {marks}" if marks else revision


def scenarios(found: Sequence[ScenarioInfo]) -> str:
    """Name, revisions and description of each bundled scenario."""
    if not found:
        return "no bundled scenarios"
    body = table(["name", "before", "after"], [[s.name, s.before, s.after] for s in found])
    notes = [f"{s.name}: {' '.join(s.description.split())}" for s in found if s.description]
    return "\n".join([body, "", *notes]) if notes else body


# JSON ----------------------------------------------------------------------------------


def operation_json(t: TimedResult) -> dict[str, Any]:
    """One operation's outcome."""
    return {
        "table": t.result.loss_table,
        "column": t.result.column,
        "operation": t.result.operation,
        "counts": dict(t.result.counts),
        "notes": list(t.result.notes),
        "revision": t.revision,
        "seconds": t.seconds,
    }


def migration_json(report: MigrationReport) -> dict[str, Any]:
    """An upgrade or downgrade for a machine."""
    return {
        "direction": report.direction,
        "target": report.target,
        "server": report.server.to_json(),
        "database": report.database,
        "revision": report.revision,
        "before": list(report.before),
        "after": list(report.after),
        "x": dict(report.x),
        "lost": report.lost,
        "operations": [operation_json(t) for t in report.operations],
        "seconds": report.seconds,
    }


def preflight_json(report: PreflightReport) -> dict[str, Any]:
    """A preflight for a machine."""
    refused = report.refused
    return {
        "ok": report.ok,
        "direction": report.direction,
        "target": report.target,
        "server": report.server.to_json(),
        "database": report.database,
        "revision": report.revision,
        "before": list(report.before),
        "after": list(report.after),
        "x": dict(report.x),
        "lost": report.lost,
        "operations": [operation_json(t) for t in report.operations],
        "refused": None
        if refused is None
        else {
            "table": refused.table,
            "column": refused.column,
            "count": refused.count,
            "samples": list(refused.samples),
            "reason": refused.reason,
            "hint": refused.hint,
            "message": refused.message,
        },
        "failure": report.failure,
        "dropped": [
            {"kind": d.kind, "table": d.table, "column": d.column, "rows": d.rows}
            for d in report.dropped
        ],
        "seconds": report.seconds,
        "rolled_back": True,
        "locks": [
            {
                "schema": lk.schema,
                "table": lk.table,
                "mode": sql_mode(lk.mode),
                "step": lk.step,
                "taken_by": _taken_by(lk, report.operations),
                "taken_at_s": round(lk.first_s, 3),
                "held_s": round(lk.held_s, 3),
                "waited_s": round(lk.waited_s, 3),
            }
            for lk in report.locks
        ],
    }


def _taken_by(lock: HeldLock, operations: Sequence[TimedResult]) -> str:
    """The operation under way when the lock was first seen, else the revision step."""
    if lock.operations_before < len(operations):
        result = operations[lock.operations_before].result
        return f"{result.operation} ({result.where})"
    return lock.step or "-"


def seed_json(report: SeedReport) -> dict[str, Any]:
    """A seed run for a machine."""
    return {
        "target": report.target,
        "server": report.server.to_json(),
        "database": report.database,
        "current": list(report.revision),
        "rows": report.rows,
        "seed": report.seed,
        "prepared": report.prepared,
        "tables": {t.table: t.rows for t in report.tables},
        "total": report.total,
        "seconds": report.seconds,
        "rows_per_second": report.rows_per_second,
        "notes": list(report.notes),
    }


def current_json(report: CurrentReport) -> dict[str, Any]:
    """Where the database is, for a machine."""
    return {
        "target": report.target,
        "server": report.server.to_json(),
        "database": report.database,
        "current": list(report.current),
        "heads": list(report.heads),
        "at_head": set(report.current) == set(report.heads),
    }


def history_json(report: HistoryReport) -> dict[str, Any]:
    """The revisions, base first, for a machine."""
    return {
        "target": report.target,
        "heads": list(report.heads),
        "revisions": [
            {
                "revision": r.revision,
                "down_revision": list(r.down_revision),
                "message": r.message,
                "head": r.revision in report.heads,
                "label": report.labels.get(r.revision),
            }
            for r in report.revisions
        ],
    }


def scenarios_json(found: Sequence[ScenarioInfo]) -> dict[str, Any]:
    """The bundled scenarios for a machine."""
    return {
        "scenarios": [
            {"name": s.name, "before": s.before, "after": s.after, "description": s.description}
            for s in found
        ]
    }


def roundtrip_json(run: RoundTripRun) -> dict[str, Any]:
    """A round trip's report for a machine, with the server it ran on."""
    data = {k: v for k, v in run.report.to_json().items() if k != "format"}
    return {**data, "server": run.server.to_json()}
