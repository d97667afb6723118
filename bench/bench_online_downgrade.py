"""Migration 014's downgrade (two collapses, three restores) plain and online, side by side.

For each size (``--rows``) the migration-014 ``before`` schema is seeded once, upgraded
(plain) and cloned twice: the plain downgrade runs on one clone, ``downgrade --online``
on the other (no application writes: this is the cost of the phases themselves, for the
3x target of online mode). Reported: both times, their ratio, and the longest short
transaction online mode reported (expand, contract: the time the application could wait).

With ``--writers``, the online downgrade runs while four application connections write
instead, and the table is ``bench.bench_online``'s (``bench_online.compare``: the longest
application statement, deadlocks, missing committed writes, WAL).

Run: ``python -m bench.bench_online_downgrade --url postgresql://postgres@127.0.0.1:5432/postgres``
(``--rows 20000 100000 1000000`` by default; ``--batch-size N`` rows per backfill batch;
``--writers``).
"""

from __future__ import annotations

import argparse
import re
import secrets
import time

from bench.app_writers import seeded_ids
from bench.bench_live import workload_014
from bench.bench_migration_014 import PROJECT, SCENARIO, clone, seed_template
from bench.bench_online import COLUMNS, compare
from bench.harness import Timer, bench_server, print_table
from toolkit import migrate
from toolkit.ops.online import progress_lines
from toolkit.postgres import Server, drop_database

_COMMITTED = re.compile(r": (expand|contract): committed in (\d+) ms")


def run_size(server: Server, rows: int, batch_size: int, writers: bool) -> list[object]:
    """One table row: the plain downgrade, then the online one, on clones of one database."""
    template = f"lossless_bench_down_{secrets.token_hex(4)}"
    timer = Timer()
    try:
        template_url = seed_template(server, template, rows, timer)
        migrate.upgrade(PROJECT, template_url, SCENARIO.after)
        if writers:
            workload = workload_014(seeded_ids(template_url))
            return compare(server, template_url, rows, "downgrade", workload, batch_size)
        with clone(server, template_url) as url:
            start = time.perf_counter()
            migrate.downgrade(PROJECT, url, SCENARIO.before)
            plain_s = time.perf_counter() - start
        lines: list[str] = []
        with clone(server, template_url) as url, progress_lines(lines.append):
            start = time.perf_counter()
            x = {"online": "true", "online_batch_size": str(batch_size)}
            migrate.downgrade(PROJECT, url, SCENARIO.before, x=x)
            online_s = time.perf_counter() - start
    finally:
        drop_database(server.url, template)
    held = {phase: 0 for phase in ("expand", "contract")}
    for line in lines:
        found = _COMMITTED.search(line)
        if found:
            held[found[1]] = max(held[found[1]], int(found[2]))
    return [
        rows,
        f"{plain_s:.1f}",
        f"{online_s:.1f}",
        f"{online_s / plain_s:.1f}x",
        held["expand"],
        held["contract"],
    ]


def main() -> None:
    """Run every size and print one line per size."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000, 1_000_000])
    p.add_argument("--url", default=None, help="server URL (default: LOSSLESS_URL or embedded)")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--writers", action="store_true", help="application writes during it")
    args = p.parse_args()
    with bench_server(args.url) as server:
        table = [run_size(server, size, args.batch_size, args.writers) for size in args.rows]
    if args.writers:
        print_table(COLUMNS, table)
        return
    print_table(
        ["rows", "plain s", "online s", "ratio", "longest expand ms", "longest contract ms"],
        table,
    )


if __name__ == "__main__":
    main()
