"""Migration 014 online (``lossless upgrade --online``) while an application writes.

For each size (``--rows``, default 100k and 1M targets) the migration-014 ``before``
schema is seeded once and cloned twice:

- on the first clone, the plain upgrade runs alone: the reference time;
- on the second, four application connections (``bench.app_writers``, as in
  ``bench.bench_live``: loopback, bounded loops, one short transaction every 10 ms) write
  while the upgrade runs online through the CLI's own code path.

Reported: the online upgrade's time and its ratio to the plain one (target <= 3x), the
longest application statement (target <= 200 ms), deadlocks seen by the application and by
the server (must be 0), and committed application writes missing afterwards, checked row
by row in the new shape (must be 0).

Run: ``python -m bench.bench_online --url postgresql://postgres@127.0.0.1:5432/postgres``
(``--rows 100000 1000000`` by default; ``--batch-size N`` rows per backfill batch).
"""

from __future__ import annotations

import argparse
import secrets
import time

from bench.app_writers import Written, seeded_ids
from bench.bench_live import run_step
from bench.bench_migration_014 import SCENARIO, clone, seed_template
from bench.harness import Timer, bench_server, print_table
from toolkit import commands
from toolkit.postgres import Server, drop_database


def run_size(server: Server, rows: int, batch_size: int) -> list[object]:
    """One table row: plain time alone, then the online upgrade under load."""
    template = f"lossless_bench_online_{secrets.token_hex(4)}"
    timer = Timer()
    try:
        template_url = seed_template(server, template, rows, timer)
        print(f"# {rows} targets seeded in {timer.results['seed']:.1f} s")
        with clone(server, template_url) as url:
            settings = commands.RunSettings(url=url, scenario=SCENARIO.name)
            start = time.perf_counter()
            commands.upgrade(settings, SCENARIO.after, progress=commands.silent)
            plain_s = time.perf_counter() - start
        print(f"# {rows} plain upgrade alone: {plain_s:.1f} s")
        with clone(server, template_url) as url:
            settings = commands.RunSettings(url=url, scenario=SCENARIO.name)
            x = {"online": "true", "online_batch_size": str(batch_size)}
            written: list[Written] = []
            f = run_step(url, rows, "upgrade", settings, seeded_ids(url), written, x=x)
        print(f"# {rows} online upgrade: {f.outcome}; longest app statement: {f.longest_sql}")
    finally:
        drop_database(server.url, template)
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
    ]


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
    print_table(
        [
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
        ],
        table,
    )


if __name__ == "__main__":
    main()
