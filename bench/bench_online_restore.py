"""``restore_column_from_jsonb`` online while an application writes under the key.

A table ``items`` (``goal_id`` with a foreign key and an index, ``code`` NOT NULL UNIQUE,
``metadata`` jsonb, one row in three with SQL NULL metadata) has both columns stashed into
``metadata`` (plain), then is cloned twice:

- on the first clone both columns are restored plainly (one transaction): the reference;
- on the second they are restored online (``online=True``, one ``run_lossless``) while four
  application connections (loopback, one short transaction every 10 ms) write
  ``metadata.legacy_goal_id`` of random rows, as the old code does.

Reported: both times and their ratio, the longest application statement (client-timed),
and whether every application write is in ``goal_id`` afterwards (``missing`` must be 0).

Run: ``python -m bench.bench_online_restore --url postgresql://postgres@127.0.0.1:5432/postgres
--rows 100000 --batch-size 1000``
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from argparse import Namespace
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

import toolkit.ops  # noqa: F401  (registers the operations)
from bench.bench_migration_014 import clone
from bench.harness import bench_server, parser, print_table
from toolkit.ops import StashColumnInJsonbOp
from toolkit.postgres import Server, create_database, drop_database
from toolkit.postgres.url import libpq_url, sqlalchemy_url

SCHEMA = """
CREATE TABLE goals (id int PRIMARY KEY);
INSERT INTO goals SELECT g FROM generate_series(1, 100) g;
CREATE TABLE items (id int PRIMARY KEY, goal_id int REFERENCES goals (id),
    code text NOT NULL CONSTRAINT items_code_key UNIQUE, metadata jsonb);
CREATE INDEX items_goal_id ON items (goal_id);
INSERT INTO items SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE i % 100 + 1 END, 'c' || i,
    CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '{}'::jsonb ELSE jsonb_build_object('n', i) END
FROM generate_series(1, :rows) i;
"""
STASHES = (
    StashColumnInJsonbOp("items", "goal_id", key="legacy_goal_id"),
    StashColumnInJsonbOp("items", "code", key="legacy_code"),
)


def _ops(
    engine: Engine, fn: Callable[[Any], Any], *, transaction: bool, x: Sequence[str] = ()
) -> float:
    """``fn(op)`` in one transaction, or (online mode) on a connection outside one; ``x``:
    the ``-x`` options (``NAME=VALUE``) the operations see."""
    start = time.perf_counter()
    environment = EnvironmentContext(Config(cmd_opts=Namespace(x=list(x))), None)  # type: ignore[arg-type]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, environment_context=environment)
        if transaction:
            with conn.begin():
                fn(Operations(context))
        else:
            fn(Operations(context))
            conn.commit()
    return time.perf_counter() - start


def _restores(online: bool) -> Callable[[Any], Any]:
    restores = [s.reverse() for s in reversed(STASHES)]
    return lambda op: op.run_lossless(*restores, online=online)


@dataclass
class Writer:
    url: str
    rows: int
    number: int
    stop: threading.Event
    written: dict[int, int] = field(default_factory=dict)
    longest_s: float = 0.0

    def run(self) -> None:
        rng = random.Random(self.number)
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            while not self.stop.is_set():
                item = rng.randrange(0, self.rows // 4) * 4 + self.number + 1  # its own rows
                goal = rng.randrange(1, 101)
                start = time.perf_counter()
                done = conn.execute(
                    "UPDATE items SET metadata = coalesce(metadata, '{}')"
                    " || jsonb_build_object('legacy_goal_id', %s::int) WHERE id = %s AND EXISTS"
                    " (SELECT FROM pg_trigger WHERE tgname = 'lossless_online_items_goal_id')",
                    (goal, item),
                ).rowcount
                self.longest_s = max(self.longest_s, time.perf_counter() - start)
                if done:
                    self.written[item] = goal
                time.sleep(0.01)


def run_size(server: Server, rows: int, batch_size: int) -> list[object]:
    template = f"lossless_bench_restore_{secrets.token_hex(4)}"
    url = create_database(server.url, template)
    try:
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute(SCHEMA.replace(":rows", str(int(rows))).encode())
        _ops(engine, lambda op: op.run_lossless(*STASHES), transaction=True)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        engine.dispose()
        with clone(server, url) as plain_url:
            engine = create_engine(sqlalchemy_url(plain_url), poolclass=NullPool)
            plain_s = _ops(engine, _restores(False), transaction=True)
            engine.dispose()
        with clone(server, url) as online_url:
            engine = create_engine(sqlalchemy_url(online_url), poolclass=NullPool)
            stop = threading.Event()
            writers = [Writer(online_url, rows, n, stop) for n in range(4)]
            threads = [threading.Thread(target=w.run) for w in writers]
            for thread in threads:
                thread.start()
            try:
                x = [f"online_batch_size={batch_size}"]
                online_s = _ops(engine, _restores(True), transaction=False, x=x)
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            written = {k: v for w in writers for k, v in w.written.items()}
            with engine.connect() as conn:
                query = text("SELECT id, goal_id FROM items WHERE id = ANY(:ids)")
                found: dict[int, int | None] = {
                    int(r[0]): r[1] for r in conn.execute(query, {"ids": list(written)})
                }
            engine.dispose()
    finally:
        drop_database(server.url, template)
    missing = len([k for k, v in written.items() if found.get(k) != v])
    longest = max(w.longest_s for w in writers) * 1000
    return [
        rows,
        batch_size,
        f"{plain_s:.1f}",
        f"{online_s:.1f}",
        f"{online_s / plain_s:.1f}x",
        len(written),
        f"{longest:.0f}",
        missing,
    ]


def main() -> None:
    p = parser(__doc__ or "", default_rows=100_000)
    p.add_argument("--batch-size", type=int, default=5000, help="rows per backfill batch")
    args = p.parse_args()
    with bench_server(args.url) as server:
        row = run_size(server, args.rows, args.batch_size)
    print_table(
        [
            "rows",
            "batch",
            "plain s",
            "online s",
            "ratio",
            "app writes",
            "longest app ms",
            "missing",
        ],
        [row],
    )


if __name__ == "__main__":
    main()
