"""Commands that look at or move a database between revisions."""

from __future__ import annotations

import click

from toolkit import commands
from toolkit.cli import render
from toolkit.cli.options import (
    Run,
    TakesRelativeRevision,
    json_option,
    online_options,
    pass_run,
    with_online,
    x_option,
)
from toolkit.cli.output import EXIT_DATA, emit, emit_json


@click.command(cls=TakesRelativeRevision)
@click.argument("revision", default="heads")
@x_option
@online_options
@json_option
@pass_run
def upgrade(
    run: Run,
    revision: str,
    x: dict[str, str],
    online: bool,
    batch_size: int | None,
    abort: bool,
    as_json: bool,
) -> None:
    """Upgrade the database to REVISION (default: the head).

    Holds the migration lock for the whole run; each revision commits on its own, so a
    failure leaves the database at the last good revision. With --online, the operations
    run in short phases while the application keeps writing (docs/online.md).
    """
    x = with_online(x, online, batch_size, abort)
    report = commands.upgrade(run.settings, revision, x=x, progress=run.progress)
    if as_json:
        emit_json(report.direction, render.migration_json(report))
    else:
        emit(render.migration(report))


@click.command(cls=TakesRelativeRevision)
@click.argument("revision")
@x_option
@online_options
@json_option
@pass_run
def downgrade(
    run: Run,
    revision: str,
    x: dict[str, str],
    online: bool,
    batch_size: int | None,
    abort: bool,
    as_json: bool,
) -> None:
    """Downgrade the database to REVISION (an id, `-1`, or `base`).

    Run `preflight REVISION` first: a downgrade may collapse data the old schema cannot hold
    (declared losses are counted in the summary). A revision may take a policy for such
    data as -x options (e.g. migration-014: -x on_missing=keep_null).
    """
    x = with_online(x, online, batch_size, abort)
    report = commands.downgrade(run.settings, revision, x=x, progress=run.progress)
    if as_json:
        emit_json(report.direction, render.migration_json(report))
    else:
        emit(render.migration(report))


@click.command(cls=TakesRelativeRevision)
@click.argument("revision", default="heads")
@click.option(
    "--locks",
    "show_locks",
    is_flag=True,
    help="Also list, per table, each lock mode the run took, when, and how long it was "
    "held (sampled from pg_locks; always in --json).",
)
@x_option
@json_option
@pass_run
@click.pass_context
def preflight(
    ctx: click.Context,
    run: Run,
    revision: str,
    show_locks: bool,
    x: dict[str, str],
    as_json: bool,
) -> None:
    """Preview a step on the real data, then roll it back.

    Runs the real revisions on the real data inside one transaction that is rolled back,
    and reports per table what would be moved, stashed, collapsed, restored, lost or
    refused. Exit 1 when data would be lost, an operation refuses, or a revision fails.
    Give it the -x options the real run will get.
    """
    report = commands.preflight(run.settings, revision, x=x, progress=run.progress)
    if as_json:
        emit_json("preflight", render.preflight_json(report))
    else:
        emit(render.preflight(report, locks=show_locks))
    if not report.ok:
        ctx.exit(EXIT_DATA)


@click.command()
@json_option
@pass_run
def current(run: Run, as_json: bool) -> None:
    """Show the revision the database is at."""
    report = commands.current(run.settings, progress=run.progress)
    if as_json:
        emit_json("current", render.current_json(report))
    else:
        emit(render.current(report))


@click.command()
@json_option
@pass_run
def history(run: Run, as_json: bool) -> None:
    """List the revisions, base first (no server needed)."""
    report = commands.history(run.settings)
    if as_json:
        emit_json("history", render.history_json(report))
    else:
        emit(render.history(report))


@click.command()
@click.argument("span", metavar="FROM:TO")
@x_option
@pass_run
def sql(run: Run, span: str, x: dict[str, str]) -> None:
    """Print the SQL of FROM:TO for review (no database needed).

    Goes down when TO is below FROM. An empty FROM means base (`:head`).
    """
    emit(
        commands.offline_sql(run.settings, span, x=x, progress=run.progress),
        nl=False,
        verbatim=True,
    )
