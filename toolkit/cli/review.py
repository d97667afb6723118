"""``lossless lint``: squawk's findings on each revision's offline SQL."""

from __future__ import annotations

from typing import Any

import click

from toolkit.cli.options import Run, json_option, pass_run, x_option
from toolkit.cli.output import EXIT_DATA, emit, emit_json
from toolkit.commands.lint import LintReport
from toolkit.commands.lint import lint as lint_revisions


@click.command()
@click.argument("span", metavar="[FROM:TO]", default=":heads")
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    metavar="RULE",
    help="A squawk rule not to report (repeatable, or comma-separated); added to "
    "[tool.lossless] lint-exclude and the alembic.ini [lossless] lint-exclude.",
)
@x_option
@json_option
@pass_run
@click.pass_context
def lint(
    ctx: click.Context,
    run: Run,
    span: str,
    exclude: tuple[str, ...],
    x: dict[str, str],
    as_json: bool,
) -> None:
    """Lint the SQL of FROM:TO with squawk, per revision (no database needed).

    Lints exactly what `lossless sql FROM:TO` prints (the timeouts first). Default: every
    revision, base to head. Exit 1 when squawk finds anything.
    """
    report = lint_revisions(run.settings, span, x=x, exclude=exclude, progress=run.progress)
    if as_json:
        emit_json("lint", lint_json(report))
    else:
        emit(render_lint(report))
    if not report.ok:
        ctx.exit(EXIT_DATA)


def render_lint(report: LintReport) -> str:
    """Per revision: each finding's line, rule, message and help."""
    lines = [f"lint {report.target} {report.span} ({report.squawk})"]
    if report.excluded:
        lines.append(f"excluded rules: {', '.join(report.excluded)}")
    for revision in report.revisions:
        verdict = f"{len(revision.findings)} finding(s)" if revision.findings else "clean"
        lines.append(f"\n{revision.direction} {revision.step}: {verdict}")
        for finding in revision.findings:
            lines.append(f"  line {finding.line}: {finding.rule}: {finding.message}")
            if finding.help:
                lines.append(f"    help: {finding.help}")
    total = report.findings
    lines.append(
        f"\n{total} finding(s) in {len(report.revisions)} revision(s)"
        if total
        else f"\nclean: no finding in {len(report.revisions)} revision(s)"
    )
    return "\n".join(lines)


def lint_json(report: LintReport) -> dict[str, Any]:
    """The report as JSON data."""
    return {
        "target": report.target,
        "span": report.span,
        "squawk": report.squawk,
        "excluded": list(report.excluded),
        "findings": report.findings,
        "ok": report.ok,
        "revisions": [
            {
                "direction": r.direction,
                "revision": r.revision,
                "step": r.step,
                "findings": [
                    {
                        "rule": f.rule,
                        "message": f.message,
                        "help": f.help,
                        "line": f.line,
                        "level": f.level,
                    }
                    for f in r.findings
                ],
            }
            for r in report.revisions
        ],
    }
