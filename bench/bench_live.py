"""Migration 014 on a live database: the upgrade and the downgrade while an application writes.

For each size (``--rows``, default 300k and 1M targets) the migration-014 ``before``
schema is seeded once and cloned; on the clone, four application connections
(``bench.app_writers``: loopback, bounded loops, one short transaction every 10 ms:
inserts with foreign keys into every table the revision touches, updates, reads) run
while ``lossless upgrade`` runs through the CLI's own code path (migration lock,
timeouts), then again during ``lossless downgrade``. Reported per step:

- deadlocks: seen by the application (SQLSTATE 40P01) and by the server
  (``pg_stat_database.deadlocks``); must be 0;
- the longest application statement (client-side wall time), and which one;
- the migration's time and outcome (a failure is reported, not hidden), and how many times
  ``--lock-retries`` tried the revision again (with the reason, on stdout);
- committed application writes missing afterwards (checked row by row in whatever shape
  the database is then, the upgrade's writes again after the downgrade); must be 0.

Run: ``python -m bench.bench_live --url postgresql://postgres@127.0.0.1:5432/postgres``
(``--rows 300000 1000000`` by default; ``--lock-timeout 2`` as the CLI's option, in
seconds; ``--lock-retries`` as the CLI's option, default 10).
"""

from __future__ import annotations

import argparse
import functools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench.app_writers import (
    StopSignal,
    WriterProcess,
    Written,
    missing,
    seeded_ids,
    stop_signal,
    writer_014,
)
from bench.bench_migration_014 import SCENARIO, clone, seed_template
from bench.harness import Timer, bench_server, print_table
from toolkit import commands
from toolkit.errors import ToolkitError
from toolkit.postgres import Server, connect, drop_database
from toolkit.scenario import Scenario

WRITERS = 4
#: Long enough for the spawned writer processes to import and start writing.
WARM_UP_S = 2.5
TAIL_S = 0.5


@dataclass(frozen=True)
class StepFigures:
    """One migration step under load."""

    rows: int
    step: str
    outcome: str
    migration_s: float
    retries: int
    app_deadlocks: int
    server_deadlocks: int
    longest_s: float
    longest_sql: str
    committed: int
    #: The migration's progress lines with when each was said (``time.perf_counter()``).
    lines: tuple[tuple[float, str], ...]
    #: When the longest application statement started (``time.perf_counter()``).
    longest_at: float
    missing: int
    app_errors: int


@dataclass(frozen=True)
class Workload:
    """A scenario and its application: a writer process (url, number, stop) and the check,
    in whatever shape the database is, of the writes they committed (the missing ones)."""

    scenario: Scenario
    writer: Callable[[str, int, StopSignal], WriterProcess]
    missing: Callable[[str, Sequence[Written]], list[str]]


def workload_014(ids: Sequence[list[str]]) -> Workload:
    """Migration 014 and ``bench.app_writers.Writer`` on the seeded ``ids`` (goals,
    sprints, targets)."""
    goals, sprints, targets = ids
    writer = functools.partial(writer_014, goals=goals, sprints=sprints, targets=targets)
    return Workload(SCENARIO, writer, missing)


def run_step(
    url: str,
    rows: int,
    step: str,
    settings: commands.RunSettings,
    workload: Workload,
    earlier: list[Written],
    x: Mapping[str, str] | None = None,
) -> StepFigures:
    """Run one migration step (``upgrade`` or ``downgrade``) while the writers write.

    ``earlier`` holds the writes committed during the previous steps: they must survive
    this one too (this step's writes are added to it). ``x``: the step's ``-x`` options.
    """
    stop = stop_signal()
    writers = [workload.writer(url, n, stop) for n in range(WRITERS)]
    deadlocks_before = _server_deadlocks(url)
    for writer in writers:
        writer.start()
    time.sleep(WARM_UP_S)
    start = time.perf_counter()
    lines: list[tuple[float, str]] = [(start, "migration starts")]

    def said(line: str) -> None:
        lines.append((time.perf_counter(), line))

    try:
        if step == "upgrade":
            commands.upgrade(settings, workload.scenario.after, x=x, progress=said)
        else:
            commands.downgrade(settings, workload.scenario.before, x=x, progress=said)
        outcome = "ok"
    except ToolkitError as exc:
        outcome = f"failed: {exc}"
    migration_s = time.perf_counter() - start
    lines.append((time.perf_counter(), "migration ends"))
    retries = [line for _, line in lines if "; retry " in line]
    for line in retries:
        print(f"#   {line}")
    time.sleep(TAIL_S)
    stop.set()
    for writer in writers:
        writer.join(timeout=120)
    stats = [w.stats for w in writers]
    longest = max(stats, key=lambda s: s.longest_s)
    written = [w for s in stats for w in s.written]
    earlier.extend(written)
    errors = [e for s in stats for e in s.errors]
    for error in sorted(set(errors))[:5]:
        print(f"#   app error ({errors.count(error)}x): {error}")
    return StepFigures(
        rows=rows,
        step=step,
        outcome=outcome,
        migration_s=migration_s,
        retries=len(retries),
        app_deadlocks=sum(s.deadlocks for s in stats),
        server_deadlocks=_server_deadlocks(url) - deadlocks_before,
        longest_s=longest.longest_s,
        longest_sql=longest.longest_sql,
        committed=len(written),
        lines=tuple(lines),
        longest_at=longest.longest_at,
        missing=len(workload.missing(url, earlier)),
        app_errors=len(errors),
    )


def _server_deadlocks(url: str) -> int:
    # The statistics are flushed by each backend at most once a second.
    time.sleep(1.2)
    with connect(url) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def run_size(server: Server, rows: int, args: argparse.Namespace) -> list[StepFigures]:
    """Seed ``rows`` targets once, then upgrade and downgrade a clone under load."""
    template = f"lossless_bench_live_{secrets.token_hex(4)}"
    timer = Timer()
    figures = []
    try:
        template_url = seed_template(server, template, rows, timer)
        print(f"# {rows} targets seeded in {timer.results['seed']:.1f} s")
        with clone(server, template_url) as url:
            workload = workload_014(seeded_ids(url))
            settings = commands.RunSettings(
                url=url,
                scenario=SCENARIO.name,
                lock_timeout_s=args.lock_timeout,
                statement_timeout_s=args.statement_timeout,
                lock_retries=args.lock_retries,
            )
            written: list[Written] = []
            for step in ("upgrade", "downgrade"):
                figures.append(run_step(url, rows, step, settings, workload, written))
                print(f"# {rows} {step}: {figures[-1].outcome}")
                if step == "upgrade" and figures[-1].outcome != "ok":
                    # Measure the downgrade all the same: upgrade without the application.
                    commands.upgrade(settings, SCENARIO.after)
                    print(f"# {rows}: upgraded without the application, for the downgrade")
    finally:
        drop_database(server.url, template)
    return figures


def main() -> None:
    """Run every size and print one line per step."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, nargs="+", default=[300_000, 1_000_000])
    p.add_argument("--url", default=None, help="server URL (default: LOSSLESS_URL or embedded)")
    p.add_argument("--lock-timeout", type=float, default=commands.DEFAULT_LOCK_TIMEOUT_S)
    p.add_argument("--statement-timeout", type=float, default=commands.DEFAULT_STATEMENT_TIMEOUT_S)
    p.add_argument("--lock-retries", type=int, default=10)
    args = p.parse_args()
    rows: list[list[object]] = []
    with bench_server(args.url) as server:
        print(
            f"# {WRITERS} application connections, one transaction each every 10 ms; "
            f"--lock-timeout {args.lock_timeout:g}s --lock-retries {args.lock_retries}"
        )
        for size in args.rows:
            for f in run_size(server, size, args):
                rows.append(
                    [
                        f.rows,
                        f.step,
                        "ok" if f.outcome == "ok" else "FAILED",
                        f"{f.migration_s:.1f}",
                        f.retries,
                        f"{f.app_deadlocks}/{f.server_deadlocks}",
                        f"{f.longest_s:.2f}",
                        f.committed,
                        f.missing,
                        f.app_errors,
                    ]
                )
                if f.outcome != "ok":
                    print(f"# {f.rows} {f.step}: {f.outcome}")
                print(f"# {f.rows} {f.step}: longest app statement: {f.longest_sql}")
    print_table(
        [
            "rows",
            "step",
            "outcome",
            "migration s",
            "retries",
            "deadlocks app/server",
            "longest app stmt s",
            "committed writes",
            "missing",
            "app errors",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
