"""Render a ``RoundTripReport`` for people: a summary table, then a titled section per step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from toolkit.ops.results import COUNT_KEYS
from toolkit.text_table import table

LOSS_HEADERS = ("table", "column", "declared", "expected", "found", "ops lost", "result")

if TYPE_CHECKING:
    from toolkit.roundtrip.report import LossCheck, RoundTripReport, StepReport


def render_report(report: RoundTripReport) -> str:
    """The whole report as text."""
    verdict = "OK" if report.ok else "FAILED"
    project = report.kind == "project"
    lines = [
        f"round trip of {report.kind} {report.subject}: {verdict}",
        f"{report.server}; {report.rows} rows per table, seed {report.seed}; "
        f"{report.seconds:.2f} s",
        *report.notes,
        *([report.coverage] if project else []),
        "",
        *table_lines(
            ["step", "revision", "seconds", *COUNT_KEYS, "result", *(["data"] if project else [])],
            [
                [
                    s.name,
                    s.revision,
                    f"{s.seconds:.2f}",
                    *_count_cells(s),
                    s.status,
                    *([s.data] if project else []),
                ]
                for s in report.steps
            ],
        ),
    ]
    for step in report.steps:
        lines += ["", *render_step(step)]
    if not report.ok:
        lines += ["", "problems:", *(f"  - {p}" for p in report.problems)]
    return "\n".join(lines)


def render_step(step: StepReport) -> list[str]:
    """One step's titled section."""
    lines = [f"== {step.name} ({step.revision}): {step.status}, {step.seconds:.2f} s"]
    if step.skipped is not None:
        return [*lines, f"skipped: {step.skipped}"]
    if step.error is not None:
        lines.append(f"error: {step.error}")
    if step.untested:
        lines.append(f"untested: {', '.join(step.untested)} when the step started")
    lines += [f"note: {n}" for n in step.notes]
    if step.ops:
        lines.append("operations:")
        lines += [f"  {r.summary()}" for r in step.ops]
    if step.invariants:
        held = sum(1 for i in step.invariants if i.ok)
        lines.append(f"invariants: {held} of {len(step.invariants)} hold")
        for inv in step.invariants:
            if inv.ok:
                lines.append(f"  ok    {inv.name}")
            else:
                sample = f" (e.g. {', '.join(inv.samples)})" if inv.samples else ""
                lines.append(f"  FAIL  {inv.name}: {inv.violations} row(s){sample}")
    if step.compared:
        verdict = "identical" if step.diff is not None and step.diff.ok else "differences"
        lines.append(f"compared {step.compared}: {verdict}")
        if step.diff is not None and not step.diff.ok:
            lines += [f"  {d.describe()}" for d in step.diff.differences]
        if step.diff is not None:
            lines += [f"  note: {n}" for n in step.diff.notices]
    changed_rows = [r for r in step.rows if not r.ok]
    if changed_rows:
        lines.append("rows:")
        for changes in changed_rows:
            lines += [f"  {line}" for line in changes.describe()]
    if step.losses:
        lines += ["losses:", *(f"  {line}" for line in _loss_table(step))]
        lines += [f"  {x.where}: {x.reason}" for x in step.losses if x.reason]
    lines += [f"problem: {p}" for p in step.problems]
    return lines


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """``table`` as a list of lines (text cells, so every column is left-aligned)."""
    return table(headers, rows).splitlines()


def _count_cells(step: StepReport) -> list[str]:
    if not step.ops:
        return ["-"] * len(COUNT_KEYS)
    counts = step.counts
    return [str(counts.get(k, 0)) for k in COUNT_KEYS]


def _loss_table(step: StepReport) -> list[str]:
    rows = [
        [
            x.table,
            x.column or "-",
            "yes" if x.declared else "no",
            _expected_cell(x),
            str(x.found),
            "-" if x.reported is None else str(x.reported),
            "ok" if x.ok else "FAIL",
        ]
        for x in step.losses
    ]
    expected = [x.expected for x in step.losses if x.declared]
    if len(step.losses) > 1 or step.ops:
        total_expected = "any" if None in expected else str(sum(e or 0 for e in expected))
        found = sum(x.found for x in step.losses)
        reported = str(step.counts.get("lost", 0)) if step.ops else "-"
        rows.append(["(all tables)", "", "", total_expected, str(found), reported, ""])
    return table_lines(LOSS_HEADERS, rows)


def _expected_cell(check: LossCheck) -> str:
    if not check.declared:
        return "-"
    return "any" if check.expected is None else str(check.expected)


def render_failures(report: RoundTripReport) -> str:
    """Only what failed, one titled section per failed step (for test failures, CI logs)."""
    failed = [s for s in report.steps if not s.ok]
    untested = [] if report.allow_untested else list(report.untested_steps)
    lines = [
        f"lossless round trip of {report.kind} {report.subject}: "
        f"{len(failed)} of {len(report.steps)} step(s) failed ({report.server})"
    ]
    if report.kind == "project":
        lines.append(report.coverage)
    for step in untested:
        lines.append(f"untested: {step.name} ({step.revision}): {', '.join(step.untested)}")
    for step in failed:
        what = "revision" if report.kind == "project" else "step"
        lines += ["", f" {what} {step.name} ({step.revision}) ".center(78, "-")]
        if step.error is not None:
            lines.append(f"error: {step.error}")
        lines += [f"problem: {p}" for p in step.problems]
        for changes in step.rows:
            if not changes.ok:
                lines += changes.describe()
    return "\n".join(lines)
