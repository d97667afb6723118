"""The iteration-decoupling revision online (``move_fk_to_child`` up, ``move_fk_to_parent``
down) while an application writes, against the plain runs.

For each size (``--rows`` iterations, default 100k and 1M) Model B is seeded once into a
template. The upgrade, then the downgrade (from the template upgraded plain), each run
twice on clones of it, as ``bench.bench_online`` runs migration 014's upgrade (the same
code: ``bench_online.compare``):

- plain, alone: the reference time;
- online (``upgrade --online`` / ``downgrade --online``, the CLI's code path) while four
  application connections (``bench.move_writers``: loopback, bounded loops, one short
  transaction every 10 ms) add migrations with their plan and iteration, re-plan their
  own migrations and read.

Reported per step: both times and their ratio, the longest application statement,
deadlocks seen by the application and by the server (must be 0), committed application
writes missing afterwards (each migration on the last plan its connection gave it, checked
in the shape the database is then; must be 0), application errors, and the server's WAL
during each run.

Run: ``python -m bench.bench_online_moves --url postgresql://postgres@127.0.0.1:5432/postgres``
(``--rows 100000 1000000`` by default; ``--batch-size N`` rows per backfill batch).
"""

from __future__ import annotations

import argparse
import functools

from bench import move_writers
from bench.app_writers import StopSignal, WriterProcess
from bench.bench_iteration_decoupling import PROJECT, seed_template
from bench.bench_live import Workload
from bench.bench_online import COLUMNS, compare
from bench.harness import Timer, bench_server, print_table
from scenarios.iteration_decoupling import MODEL_C, SCENARIO
from toolkit import migrate
from toolkit.postgres import Server, connect, scratch_database


def _writer(url: str, number: int, stop: StopSignal) -> WriterProcess:
    return WriterProcess(functools.partial(move_writers.PlanWriter, url, number), stop)


WORKLOAD = Workload(SCENARIO, _writer, move_writers.missing)


def run_size(server: Server, rows: int, batch_size: int) -> list[list[object]]:
    """Two table rows: the upgrade, then the downgrade."""
    timer = Timer()
    table = []
    with scratch_database(server.url, prefix="lossless_bench_moves") as template:
        seed_template(template, rows, timer)
        print(f"# {rows} iterations seeded in {timer.results['seed']:.1f} s")
        table.append(["upgrade", *compare(server, template, rows, "upgrade", WORKLOAD, batch_size)])
        migrate.upgrade(PROJECT, template, MODEL_C)
        with connect(template) as conn:
            conn.execute("VACUUM (ANALYZE)")
        down = compare(server, template, rows, "downgrade", WORKLOAD, batch_size)
        table.append(["downgrade", *down])
    return table


def main() -> None:
    """Run every size and print one line per size and step."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--url", default=None, help="server URL (default: LOSSLESS_URL or embedded)")
    p.add_argument("--batch-size", type=int, default=5000)
    args = p.parse_args()
    with bench_server(args.url) as server:
        print(
            f"# 4 application connections, a transaction each every 10 ms; {args.batch_size}/batch"
        )
        table = [row for size in args.rows for row in run_size(server, size, args.batch_size)]
    print_table(["step", *COLUMNS], table)


if __name__ == "__main__":
    main()
