"""The outcome of a round trip: one ``StepReport`` per step, rendered as text or JSON.

A step is ok when it has no error and no problem. Problems are sentences naming revision,
table, column and row counts; the engines that build the steps decide what is a problem
(an undeclared loss, a declared loss of the wrong size, a violated invariant...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from toolkit.ops.results import COUNT_KEYS, OpResult
from toolkit.verify import RowChanges, SnapshotDiff

REPORT_FORMAT = "lossless.roundtrip/1"


@dataclass(frozen=True)
class LossCheck:
    """Rows of a table that did not come back unchanged, and whether that was declared.

    ``expected``: what the declaration says (a scenario's ``DeclaredLoss.expected_sql``;
    ``None`` for a project allowance, which allows any number); ``found``: counted
    independently by row fingerprints; ``reported``: what the operations said they lost
    (``None`` when no operation reported on this table).
    """

    table: str
    found: int
    declared: bool
    expected: int | None = None
    reported: int | None = None
    column: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    @property
    def ok(self) -> bool:
        if not self.declared:
            return self.found == 0
        return self.expected is None or self.found == self.expected

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "table": self.table,
            "column": self.column,
            "declared": self.declared,
            "expected": self.expected,
            "found": self.found,
            "reported": self.reported,
            "reason": self.reason,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class InvariantResult:
    """An invariant and the rows that violate it (count and a few keys)."""

    name: str
    violations: int
    samples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "violations": self.violations, "samples": list(self.samples)}


@dataclass(frozen=True)
class StepReport:
    """One step of a round trip: what ran, how long, what the operations and checks said."""

    name: str
    revision: str
    seconds: float = 0.0
    ops: tuple[OpResult, ...] = ()
    compared: str = ""
    diff: SnapshotDiff | None = None
    rows: tuple[RowChanges, ...] = ()
    losses: tuple[LossCheck, ...] = ()
    invariants: tuple[InvariantResult, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    skipped: str | None = None
    #: Tables that existed when the step started and that the step altered, dropped,
    #: updated or deleted from.
    changed_tables: tuple[str, ...] = ()
    #: Why the step proved nothing about data (e.g. "codes had no rows"); empty if tested.
    untested: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    @property
    def status(self) -> Literal["ok", "FAILED", "ERROR", "UNTESTED", "skipped"]:
        if self.skipped is not None:
            return "skipped"
        if self.error is not None:
            return "ERROR"
        if not self.ok:
            return "FAILED"
        return "UNTESTED" if self.untested else "ok"

    @property
    def data(self) -> str:
        """What the step was tested with: for the summary table."""
        if self.skipped is not None or self.error is not None or not self.compared:
            return "-"
        if self.untested:
            return "untested: " + ", ".join(self.untested)
        if not self.changed_tables:
            return "no existing table changed"
        return "rows in " + ", ".join(self.changed_tables)

    @property
    def tested_with_data(self) -> bool:
        """Checked, and every existing table it changed had rows."""
        return bool(self.compared) and bool(self.changed_tables) and not self.untested

    @property
    def counts(self) -> dict[str, int]:
        """The operations' counts added up per key of ``COUNT_KEYS`` (absent keys: 0)."""
        return op_totals(self.ops)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "revision": self.revision,
            "status": self.status,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "counts": self.counts,
            "operations": [
                {
                    "operation": r.operation,
                    "table": r.loss_table,
                    "counts": dict(r.counts),
                    "offline": r.offline,
                    "notes": list(r.notes),
                }
                for r in self.ops
            ],
            "compared": self.compared,
            "diff": self.diff.to_json() if self.diff is not None else None,
            "rows": [r.to_json() for r in self.rows],
            "losses": [x.to_json() for x in self.losses],
            "invariants": [i.to_json() for i in self.invariants],
            "problems": list(self.problems),
            "notes": list(self.notes),
            "error": self.error,
            "skipped": self.skipped,
            "changed_tables": list(self.changed_tables),
            "untested": list(self.untested),
            "tested_with_data": self.tested_with_data,
        }


@dataclass(frozen=True)
class RoundTripReport:
    """Every step of a scenario's or a project's round trip; ``ok`` when all steps are."""

    subject: str
    kind: Literal["scenario", "project"]
    server: str
    rows: int
    seed: int
    steps: tuple[StepReport, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())
    #: ``allow_untested_steps`` of the project's settings: untested steps do not fail the run.
    allow_untested: bool = False

    @property
    def ok(self) -> bool:
        """Every step passed, and was tested with data unless untested steps are allowed."""
        steps_ok = all(s.ok for s in self.steps)
        return steps_ok and (self.allow_untested or not self.untested_steps)

    @property
    def untested_steps(self) -> tuple[StepReport, ...]:
        return tuple(s for s in self.steps if s.status == "UNTESTED")

    @property
    def coverage(self) -> str:
        """One line: how many steps were tested with data, and the others."""
        total = len(self.steps)
        tested = sum(1 for s in self.steps if s.tested_with_data)
        parts = [f"{tested} of {total} {_plural(total, 'step')} tested with data"]
        untested = len(self.untested_steps)
        if untested:
            allowed = " (allowed by allow_untested_steps)" if self.allow_untested else ""
            parts.append(f"{untested} untested{allowed}")
        no_table = sum(1 for s in self.steps if s.compared and not s.changed_tables)
        if no_table:
            parts.append(f"{no_table} changed no table that existed before")
        other = total - tested - untested - no_table
        if other:
            parts.append(f"{other} not checked (error or skipped)")
        return ", ".join(parts)

    @property
    def problems(self) -> tuple[str, ...]:
        """Every step's error and problems, prefixed by the step; untested steps too,
        unless allowed."""
        found = []
        for step in self.steps:
            if step.error is not None:
                found.append(f"{step.name} ({step.revision}): error: {step.error}")
            found += [f"{step.name} ({step.revision}): {p}" for p in step.problems]
            if step.status == "UNTESTED" and not self.allow_untested:
                found.append(
                    f"{step.name} ({step.revision}): untested: {', '.join(step.untested)} "
                    "when it started (set allow_untested_steps = true in [tool.lossless] "
                    "to accept)"
                )
        return tuple(found)

    def render(self) -> str:
        """The human report: a summary table, then one section per step."""
        from toolkit.roundtrip.report_text import render_report

        return render_report(self)

    def render_failures(self) -> str:
        """Only the failed steps, each in a titled section (revision, table, counts, keys)."""
        from toolkit.roundtrip.report_text import render_failures

        return render_failures(self)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``format``, ``ok``, per-step details, timings)."""
        return {
            "format": REPORT_FORMAT,
            "kind": self.kind,
            "subject": self.subject,
            "server": self.server,
            "rows": self.rows,
            "seed": self.seed,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "coverage": self.coverage,
            "tested_with_data": sum(1 for s in self.steps if s.tested_with_data),
            "untested": [s.name for s in self.untested_steps],
            "allow_untested": self.allow_untested,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "steps": [s.to_json() for s in self.steps],
        }


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def op_totals(ops: Iterable[OpResult]) -> dict[str, int]:
    """Counts of several operations added up per key of ``COUNT_KEYS``."""
    totals = dict.fromkeys(COUNT_KEYS, 0)
    for result in ops:
        for key, value in result.counts.items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals
