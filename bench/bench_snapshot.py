"""A snapshot of a large table vs the bare hash query, in the same run on the same server.

    python -m bench.bench_snapshot --rows 1000000 [--repeat 3] [--url URL]

The table mixes the usual types (uuid key, text, integer, numeric, timestamptz, boolean,
jsonb with NULLs). Variants, each the best of ``--repeat`` runs:

- ``bare``: ``SELECT count(*), sum(hashtextextended(t::text, 0)) FROM t``, the floor;
- ``snapshot``: ``toolkit.verify.take_snapshot`` (catalog reads + the per-table aggregate
  over name-sorted columns, settings pinned);
- ``snapshot, 1 volatile column``: the same, one column left out of the fingerprint;
- ``row capture``: ``capture_rows`` (a jsonb copy of every row, for naming differences;
  the verifier only takes it on scratch databases), for scale.

The target is ``snapshot`` within 2x of ``bare``. Client memory stays flat: no row reaches
Python.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from bench.harness import Timer, bench_server, fresh_engine, parser, peak_rss_mb, print_table
from toolkit.verify import capture_rows, drop_capture, take_snapshot

CREATE = """
CREATE TABLE items (
    id uuid PRIMARY KEY,
    title text NOT NULL,
    quantity integer NOT NULL,
    price numeric(12, 2),
    created_at timestamptz NOT NULL,
    active boolean NOT NULL,
    metadata jsonb
)
"""

LOAD = """
INSERT INTO items
SELECT md5(i::text)::uuid, 'item ' || i, i %% 1000, i * 1.25,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', i %% 2 = 0,
       CASE i %% 3 WHEN 0 THEN NULL WHEN 1 THEN '{}'::jsonb
            ELSE jsonb_build_object('k', i, 'label', 'é ' || i) END
FROM generate_series(1, %(rows)s) AS i
"""

BARE = "SELECT count(*), sum(hashtextextended(t::text, 0)) FROM items AS t"


def main() -> None:
    """Load the table, time each variant, print a table with ratios to ``bare``."""
    args = parser(__doc__ or "", default_rows=1_000_000).parse_args()
    timer = Timer()
    with bench_server(args.url) as server, fresh_engine(server) as engine:
        with engine.connect() as conn:
            conn.exec_driver_sql(CREATE)
            conn.exec_driver_sql(LOAD, {"rows": args.rows})
            conn.commit()
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE items")
            variants: dict[str, Callable[[], object]] = {
                "bare": lambda: conn.exec_driver_sql(BARE).one(),
                "snapshot": lambda: take_snapshot(conn),
                "snapshot, 1 volatile column": lambda: take_snapshot(
                    conn, exclude_columns={"items": ["created_at"]}
                ),
                "row capture": lambda: drop_capture(conn, capture_rows(conn, "bench")),
            }
            _check(conn)
            for _ in range(args.repeat):
                for label, run in variants.items():
                    with timer.measure(label):
                        run()
    bare = timer.results["bare"]
    print(f"# {args.rows} rows; best of {args.repeat}; peak client RSS {peak_rss_mb():.0f} MiB")
    print_table(
        ["variant", "seconds", "x bare"],
        [[label, seconds, seconds / bare] for label, seconds in timer.results.items()],
    )


def _check(conn: Connection) -> None:
    """The snapshot sees every row the bare query sees."""
    count = conn.exec_driver_sql(BARE).one()[0]
    table = take_snapshot(conn).table("items")
    assert table is not None and table.rows == count, (table, count)


if __name__ == "__main__":
    main()
