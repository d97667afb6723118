"""The stash's value expression: ``to_jsonb(v)`` vs the one that keeps array bounds.

    python -m bench.bench_stash_value --rows 1000000 [--url URL] [--repeat N]

``JsonbSlot.stashed_value`` reads once per statement whether the column is an array, and
computes an array's text only to look at its first character (a lower bound other than 1
prints as ``[0:2]=...``). This measures that cost alone, without the write: ``SELECT
count(expression)`` over N rows of a ``uuid`` column and of an ``int[]`` column.
"""

from __future__ import annotations

import argparse

from sqlalchemy import text

from bench.harness import Timer, bench_server, fresh_engine, parser, print_table
from toolkit.sql.idents import render
from toolkit.sql.jsonb_slot import JsonbSlot

SEED = """
CREATE TABLE t (id int PRIMARY KEY, u uuid, a int[]);
INSERT INTO t SELECT i, md5(i::text)::uuid, ARRAY[i, i + 1] FROM generate_series(1, {rows}) i;
VACUUM ANALYZE t
"""


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    p: argparse.ArgumentParser = parser(__doc__ or "", default_rows=1_000_000)
    args = p.parse_args(argv)
    table: list[list[object]] = []
    with bench_server(args.url) as server, fresh_engine(server) as engine, engine.connect() as conn:
        raw = conn.execution_options(isolation_level="AUTOCOMMIT")
        for statement in SEED.format(rows=args.rows).split(";"):
            raw.execute(text(statement))
        for column in ("u", "a"):
            timer = Timer()
            kept = render(JsonbSlot("t", column, "m", "k", ("id",)).stashed_value())
            variants = {"to_jsonb": f"to_jsonb(t.{column})", "bounds kept": kept}
            for _ in range(args.repeat):
                for label, expression in variants.items():
                    query = text(f"SELECT count({expression}) FROM t AS t")  # noqa: S608 (constants)
                    with timer.measure(label):
                        raw.execute(query)
            base = timer.results["to_jsonb"]
            for label, seconds in timer.results.items():
                table.append([args.rows, column, label, seconds, seconds / base])
    print_table(["rows", "column", "expression", "seconds", "this/to_jsonb"], table)


if __name__ == "__main__":
    main()
