"""Commands that fill, photograph, compare and prove: seed, snapshot, diff, roundtrip."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit import commands
from toolkit.cli import render
from toolkit.cli.options import Run, json_option, pass_run, rows_option
from toolkit.cli.output import EXIT_DATA, emit, emit_json

_ROUNDTRIP_ROWS = 200


@click.command()
@json_option
def scenarios(as_json: bool) -> None:
    """List the bundled scenarios and their revisions."""
    found = commands.list_scenarios()
    if as_json:
        emit_json("scenarios", render.scenarios_json(found))
    else:
        emit(render.scenarios(found))


@click.command()
@rows_option(default=None)
@json_option
@pass_run
def seed(run: Run, rows: int, seed: int, as_json: bool) -> None:
    """Fill the database with deterministic test data.

    A scenario seeds its pre-refactor schema (an empty database is first upgraded to it);
    with --config the schema the database has is reflected and filled.
    """
    report = commands.seed(run.settings, rows=rows, seed=seed, progress=run.progress)
    if as_json:
        emit_json("seed", render.seed_json(report))
    else:
        emit(render.seeded(report))


@click.command()
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write the snapshot to (JSON).",
)
@pass_run
def snapshot(run: Run, output: Path) -> None:
    """Write a snapshot of the database to a file.

    Schema and per-table data fingerprints, computed inside PostgreSQL (no rows leave the
    server); compare two snapshots with `diff`.
    """
    written = commands.snapshot(run.settings, output, progress=run.progress)
    emit(
        f"snapshot of database {written.database!r} written to {written.path}: "
        f"{written.tables} tables, {written.rows:,} rows"
    )


@click.command()
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def diff(ctx: click.Context, first: Path, second: Path, as_json: bool) -> None:
    """Compare two snapshot files; exit 1 when they differ."""
    found = commands.diff_files(first, second)
    if as_json:
        emit_json("diff", found.to_json())
    else:
        emit(found.render())
    if not found.ok:
        ctx.exit(EXIT_DATA)


@click.command()
@rows_option(default=_ROUNDTRIP_ROWS, minimum=0)
@click.option(
    "--clone",
    is_flag=True,
    help="Start from a copy of the --url database (CREATE DATABASE ... TEMPLATE: no other "
    "session may be connected to it meanwhile).",
)
@click.option("--keep", is_flag=True, help="Keep the scratch database afterwards.")
@click.option(
    "--online",
    is_flag=True,
    help="Run the upgrades of a bundled scenario in online mode, and its downgrades when"
    " each of their operations has one (docs/online.md).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that share a project's steps (default: 2 from 12 revisions on a machine "
    "with 2 CPUs or more, else 1).",
)
@json_option
@pass_run
@click.pass_context
def roundtrip(
    ctx: click.Context,
    run: Run,
    rows: int,
    seed: int,
    clone: bool,
    keep: bool,
    online: bool,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Prove on a scratch database that a round trip loses nothing.

    Upgrade, downgrade and upgrade again on seeded data (--rows 0 with --clone: only the
    copied data); every change must be a declared loss. Never changes the database --url
    names: the scratch database on the same server is dropped afterwards unless --keep.
    Exit 1 when the proof fails.
    """
    done = commands.roundtrip(
        run.settings,
        rows=rows,
        seed=seed,
        clone=clone,
        keep=keep,
        online=online,
        jobs=jobs,
        progress=run.progress,
    )
    report = done.report
    if as_json:
        emit_json("roundtrip", render.roundtrip_json(done))
    else:
        emit(report.render())
    if not report.ok:
        ctx.exit(EXIT_DATA)
