"""promote_fk_to_junction and collapse_junction_to_fk vs the same jobs hand-written in SQL.

    python -m bench.bench_ops --rows 1000000 [--url URL] [--repeat N]

On one server, in one run: a ``targets`` table of N rows with a NOT NULL FK ``goal_id`` is
seeded once into a template database; every variant then runs on a fresh clone of it:

- promote through the toolkit (``op.promote_fk_to_junction``, online reflection, checks);
- the same job hand-written, loading the bare junction first and constraining it after;
- the same job hand-written with the junction's constraints and indexes created first;
- collapse through the toolkit vs hand-written (first link per target, NOT NULL, FK).

It runs at N/10 rows then N rows and prints seconds, ratios and the client's peak memory
(which stays flat: no row travels to Python).
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

import toolkit.ops  # noqa: F401  (registers the operations)
from bench.harness import Timer, bench_server, parser, peak_rss_mb, print_table
from toolkit.postgres import create_database, drop_database
from toolkit.postgres.url import sqlalchemy_url

SEED = """
CREATE TABLE client_goals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
    created_at timestamp NOT NULL DEFAULT now());
CREATE TABLE targets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
    goal_id uuid NOT NULL REFERENCES client_goals(id),
    created_at timestamp NOT NULL DEFAULT now());
INSERT INTO client_goals (id, title)
SELECT md5('goal' || i)::uuid, 'goal ' || i FROM generate_series(1, {goals}) AS i;
INSERT INTO targets (id, title, goal_id)
SELECT md5('target' || i)::uuid, 'target ' || i, md5('goal' || (i % {goals} + 1))::uuid
FROM generate_series(1, {rows}) AS i;
VACUUM ANALYZE
"""

#: The hand-written promote, loading first (what the toolkit is measured against).
HAND_LOAD_THEN_CONSTRAIN = """
CREATE TABLE target_goal_links (
    id uuid NOT NULL DEFAULT gen_random_uuid(), target_id uuid NOT NULL,
    goal_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO target_goal_links (target_id, goal_id)
SELECT id, goal_id FROM targets WHERE goal_id IS NOT NULL;
ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_pkey PRIMARY KEY (id);
ALTER TABLE target_goal_links ADD CONSTRAINT uq_target_goal UNIQUE (target_id, goal_id);
CREATE INDEX ix_target_goal_links_target_id ON target_goal_links (target_id);
CREATE INDEX ix_target_goal_links_goal_id ON target_goal_links (goal_id);
ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_target_id_fkey
    FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE;
ALTER TABLE target_goal_links ADD CONSTRAINT target_goal_links_goal_id_fkey
    FOREIGN KEY (goal_id) REFERENCES client_goals(id) ON DELETE CASCADE;
ALTER TABLE targets DROP CONSTRAINT targets_goal_id_fkey;
ALTER TABLE targets DROP COLUMN goal_id
"""

#: The hand-written promote, constraints first (the slow way).
HAND_CONSTRAINTS_FIRST = """
CREATE TABLE target_goal_links (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    target_id uuid NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    goal_id uuid NOT NULL REFERENCES client_goals(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_target_goal UNIQUE (target_id, goal_id));
CREATE INDEX ix_target_goal_links_target_id ON target_goal_links (target_id);
CREATE INDEX ix_target_goal_links_goal_id ON target_goal_links (goal_id);
INSERT INTO target_goal_links (target_id, goal_id)
SELECT id, goal_id FROM targets WHERE goal_id IS NOT NULL;
ALTER TABLE targets DROP CONSTRAINT targets_goal_id_fkey;
ALTER TABLE targets DROP COLUMN goal_id
"""

#: The hand-written collapse: first link per target by (created_at, id).
HAND_COLLAPSE = """
ALTER TABLE targets ADD COLUMN goal_id uuid;
UPDATE targets AS t SET goal_id = f.goal_id
FROM (SELECT DISTINCT ON (target_id) target_id, goal_id FROM target_goal_links
      ORDER BY target_id, created_at, id) AS f
WHERE t.id = f.target_id;
ALTER TABLE targets ALTER COLUMN goal_id SET NOT NULL;
ALTER TABLE targets ADD CONSTRAINT targets_goal_id_fkey
    FOREIGN KEY (goal_id) REFERENCES client_goals(id);
DROP TABLE target_goal_links
"""


def promote(op: Operations) -> None:
    op.promote_fk_to_junction(  # type: ignore[attr-defined]
        "targets",
        "goal_id",
        junction="target_goal_links",
        owner_column="target_id",
        referent_column="goal_id",
        unique_name="uq_target_goal",
    )


def collapse(op: Operations) -> None:
    op.collapse_junction_to_fk(  # type: ignore[attr-defined]
        "target_goal_links",
        table="targets",
        column="goal_id",
        owner_column="target_id",
        referent_column="goal_id",
        referent_table="client_goals",
        nullable=False,
    )


@contextmanager
def connection(url: str) -> Iterator[Connection]:
    """A connection whose block is one transaction, committed at the end."""
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def run_sql(script: str) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(script)

    return run


def run_op(fn: Callable[[Operations], None]) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        fn(Operations(MigrationContext.configure(conn)))

    return run


def make_template(
    server_url: str, name: str, rows: int, then: Callable[[Connection], None] | None
) -> str:
    url = create_database(server_url, name)
    with connection(url) as conn:
        run_sql(SEED.format(rows=rows, goals=max(rows // 100, 10)).replace("VACUUM ANALYZE", ""))(
            conn
        )
        if then is not None:
            then(conn)
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return name


def timed(
    timer: Timer, label: str, server_url: str, template: str, job: Callable[[Connection], None]
) -> None:
    """Run ``job`` on a fresh clone of ``template``, timing only the job (and its commit)."""
    name = f"lossless_bench_{secrets.token_hex(4)}"
    url = create_database(server_url, name, template=template)
    try:
        with connection(url) as conn, timer.measure(label):
            job(conn)
            conn.commit()
    finally:
        drop_database(server_url, name)


def bench_size(server_url: str, rows: int, repeat: int) -> list[list[object]]:
    tag = secrets.token_hex(4)
    seeded = make_template(server_url, f"lossless_bench_seeded_{tag}", rows, None)
    promoted = make_template(server_url, f"lossless_bench_promoted_{tag}", rows, run_op(promote))
    timer = Timer()
    try:
        for _ in range(repeat):
            timed(timer, "promote: toolkit", server_url, seeded, run_op(promote))
            timed(
                timer,
                "promote: hand, load then constrain",
                server_url,
                seeded,
                run_sql(HAND_LOAD_THEN_CONSTRAIN),
            )
            timed(
                timer,
                "promote: hand, constraints first",
                server_url,
                seeded,
                run_sql(HAND_CONSTRAINTS_FIRST),
            )
            timed(timer, "collapse: toolkit", server_url, promoted, run_op(collapse))
            timed(timer, "collapse: hand", server_url, promoted, run_sql(HAND_COLLAPSE))
    finally:
        drop_database(server_url, seeded)
        drop_database(server_url, promoted)
    t = timer.results
    memory = peak_rss_mb()
    toolkit_promote = t["promote: toolkit"]
    return [
        [rows, "promote: toolkit", t["promote: toolkit"], 1.0, memory],
        [
            rows,
            "promote: hand, load then constrain",
            t["promote: hand, load then constrain"],
            toolkit_promote / t["promote: hand, load then constrain"],
            memory,
        ],
        [
            rows,
            "promote: hand, constraints first",
            t["promote: hand, constraints first"],
            toolkit_promote / t["promote: hand, constraints first"],
            memory,
        ],
        [rows, "collapse: toolkit", t["collapse: toolkit"], 1.0, memory],
        [
            rows,
            "collapse: hand",
            t["collapse: hand"],
            t["collapse: toolkit"] / t["collapse: hand"],
            memory,
        ],
    ]


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    p: argparse.ArgumentParser = parser(__doc__ or "", default_rows=100_000)
    args = p.parse_args(argv)
    table: list[list[object]] = []
    with bench_server(args.url) as server:
        for rows in (max(args.rows // 10, 1000), args.rows):
            table += bench_size(server.url, rows, args.repeat)
            print(f"# {rows} rows done, client peak memory {peak_rss_mb():.1f} MiB", flush=True)
    print(
        "# ratio = toolkit seconds / this variant's seconds (promote rows compare to the"
        " toolkit promote, collapse rows to the toolkit collapse)"
    )
    print_table(["rows", "variant", "seconds", "toolkit/this", "client peak MiB"], table)


if __name__ == "__main__":
    main()
