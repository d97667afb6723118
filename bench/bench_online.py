"""Migration 014 online (``lossless upgrade --online``) while an application writes.

For each size (``--rows``, default 100k and 1M targets) the migration-014 ``before``
schema is seeded once and cloned twice:

- on the first clone, the plain upgrade runs alone: the reference time;
- on the second, four application connections (``bench.app_writers``, each in a process of
  its own as an application is, as in
  ``bench.bench_live``: loopback, bounded loops, one short transaction every 10 ms) write
  while the upgrade runs online through the CLI's own code path.

Reported: the online upgrade's time and its ratio to the plain one (target <= 3x), the
longest application statement (target <= 200 ms) and what the migration was doing while it
ran (the progress lines said just before it started and just after it ended), deadlocks
seen by the application and by the server (must be 0), committed application writes
missing afterwards, checked row by row in the new shape (must be 0), and the WAL each
upgrade wrote (``pg_current_wal_lsn()`` before and after: the whole server's, so the
application's writes, and anything else running on the server, are in it too).

Run: ``python -m bench.bench_online --url postgresql://postgres@127.0.0.1:5432/postgres``
(``--rows 100000 1000000`` by default; ``--batch-size N`` rows per backfill batch).
"""

from __future__ import annotations

import argparse
import secrets
import time

from bench.app_writers import Written, seeded_ids
from bench.bench_live import StepFigures, Workload, run_step, workload_014
from bench.bench_migration_014 import clone, seed_template
from bench.harness import Timer, bench_server, print_table
from toolkit import commands
from toolkit.postgres import Server, connect, drop_database

MB = 1_000_000
#: The columns of a ``compare`` row.
COLUMNS = [
    "rows",
    "plain s",
    "online",
    "online s",
    "ratio",
    "deadlocks app/server",
    "longest app stmt ms",
    "committed writes",
    "missing",
    "app errors",
    "plain WAL MB",
    "online WAL MB",
]


def run_size(server: Server, rows: int, batch_size: int) -> list[object]:
    """One table row: plain time alone, then the online upgrade under load."""
    template = f"lossless_bench_online_{secrets.token_hex(4)}"
    timer = Timer()
    try:
        template_url = seed_template(server, template, rows, timer)
        print(f"# {rows} targets seeded in {timer.results['seed']:.1f} s")
        workload = workload_014(seeded_ids(template_url))
        return compare(server, template_url, rows, "upgrade", workload, batch_size)
    finally:
        drop_database(server.url, template)


def compare(
    server: Server, template_url: str, rows: int, step: str, workload: Workload, batch_size: int
) -> list[object]:
    """One table row (``COLUMNS``): ``step`` (``upgrade`` or ``downgrade``) run plain on a
    clone of the template, alone, then online on another clone while ``workload``'s
    application writes."""
    name = workload.scenario.name
    with clone(server, template_url) as url:
        settings = commands.RunSettings(url=url, scenario=name)
        before = wal_position(url)
        start = time.perf_counter()
        if step == "upgrade":
            commands.upgrade(settings, workload.scenario.after, progress=commands.silent)
        else:
            commands.downgrade(settings, workload.scenario.before, progress=commands.silent)
        plain_s = time.perf_counter() - start
        plain_wal = wal_since(url, before)
    print(f"# {rows} plain {step} alone: {plain_s:.1f} s, {plain_wal / MB:.0f} MB of WAL")
    with clone(server, template_url) as url:
        settings = commands.RunSettings(url=url, scenario=name)
        x = {"online": "true", "online_batch_size": str(batch_size)}
        written: list[Written] = []
        before = wal_position(url)
        f = run_step(url, rows, step, settings, workload, written, x=x)
        online_wal = wal_since(url, before)
    print(f"# {rows} online {step}: {f.outcome}; longest app statement: {f.longest_sql}")
    print(f"# {rows} longest app statement {when(f)}")
    return [
        rows,
        f"{plain_s:.1f}",
        "ok" if f.outcome == "ok" else "FAILED",
        f"{f.migration_s:.1f}",
        f"{f.migration_s / plain_s:.1f}x",
        f"{f.app_deadlocks}/{f.server_deadlocks}",
        f"{f.longest_s * 1000:.0f}",
        f.committed,
        f.missing,
        f.app_errors,
        f"{plain_wal / MB:.0f}",
        f"{online_wal / MB:.0f}",
    ]


def when(f: StepFigures) -> str:
    """What the migration was doing while the longest application statement ran: the
    progress lines said just before it started and just after it ended."""
    began, ended = f.longest_at, f.longest_at + f.longest_s
    before = [(t, line) for t, line in f.lines if t <= began]
    after = [(t, line) for t, line in f.lines if t >= ended]
    start = f.lines[0][0]
    said_before = f"after {before[-1][1]!r}" if before else "before the migration started"
    said_after = f"before {after[0][1]!r}" if after else "after the migration ended"
    return f"started at {began - start:+.2f} s: {said_before}, ended {said_after}"


def wal_position(url: str) -> str:
    """The server's current WAL position."""
    with connect(url) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    return str(row[0]) if row else "0/0"


def wal_since(url: str, before: str) -> int:
    """Bytes of WAL the whole server wrote since ``before``."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", (before,)
        ).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def main() -> None:
    """Run every size and print one line per size."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--url", default=None, help="server URL (default: LOSSLESS_URL or embedded)")
    p.add_argument("--batch-size", type=int, default=5000)
    args = p.parse_args()
    with bench_server(args.url) as server:
        print(
            f"# 4 application connections, a transaction each every 10 ms; {args.batch_size}/batch"
        )
        table = [run_size(server, size, args.batch_size) for size in args.rows]
    print_table(COLUMNS, table)


if __name__ == "__main__":
    main()
