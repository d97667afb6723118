"""Migration 014 at scale: the toolkit's revision against the same steps hand-written in SQL.

Seeds the migration 013 schema once (``--rows`` targets and as many commitments), then for
each variant clones that database and times the whole upgrade to ``f06135d685df`` and the
whole downgrade back, each in one transaction:

- ``toolkit``: ``alembic upgrade`` / ``downgrade`` of the bundled revision (Alembic, the
  operations, their catalog lookups and refusal checks included);
- ``hand-written``: the same steps as plain SQL, written the way a careful DBA would (load
  the junction, then constrain it; one UPDATE per stashed column; a side table remembering
  which metadata was NULL), without the toolkit's checks.

Both must bring back exactly the seeded database (compared by snapshot), so the ratio
compares equal work. Run: ``python -m bench.bench_migration_014 --rows 1000000``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.harness import Timer, bench_server, parser, peak_rss_mb, print_table
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.postgres import Server, connect, create_database, drop_database
from toolkit.postgres.url import database_name, sqlalchemy_url
from toolkit.verify import Snapshot, diff, take_snapshot

SCENARIO = get_scenario("migration-014")
PROJECT = migrate.Project.for_scenario(SCENARIO)
SEED = 1

_JUNCTION = """
CREATE TABLE target_{name}_links (id uuid NOT NULL DEFAULT gen_random_uuid(),
    target_id uuid NOT NULL, {name}_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO target_{name}_links (target_id, {name}_id) SELECT id, {name}_id FROM targets;
ALTER TABLE target_{name}_links ADD CONSTRAINT target_{name}_links_pkey PRIMARY KEY (id);
ALTER TABLE target_{name}_links ADD CONSTRAINT uq_target_{name} UNIQUE (target_id, {name}_id);
CREATE INDEX ix_target_{name}_links_target_id ON target_{name}_links (target_id);
CREATE INDEX ix_target_{name}_links_{name}_id ON target_{name}_links ({name}_id);
ALTER TABLE target_{name}_links ADD CONSTRAINT target_{name}_links_target_id_fkey
    FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE;
ALTER TABLE target_{name}_links ADD CONSTRAINT target_{name}_links_{name}_id_fkey
    FOREIGN KEY ({name}_id) REFERENCES {referent}(id) ON DELETE CASCADE;
ALTER TABLE targets DROP COLUMN {name}_id;
"""
_STASH = """
INSERT INTO m014_null_metadata SELECT '{table}.{name}_id', id FROM {table}
    WHERE {name}_id IS NOT NULL AND metadata IS NULL;
UPDATE {table} SET metadata = coalesce(metadata, '{{}}')
    || jsonb_build_object('legacy_{name}_id', {name}_id) WHERE {name}_id IS NOT NULL;
ALTER TABLE {table} DROP COLUMN {name}_id;
"""
_COLLAPSE = """
ALTER TABLE targets ADD COLUMN {name}_id uuid;
UPDATE targets AS t SET {name}_id = f.{name}_id
FROM (SELECT DISTINCT ON (target_id) target_id, {name}_id FROM target_{name}_links
      ORDER BY target_id, created_at, id) AS f
WHERE t.id = f.target_id;
ALTER TABLE targets ALTER COLUMN {name}_id SET NOT NULL;
ALTER TABLE targets ADD CONSTRAINT targets_{name}_id_fkey
    FOREIGN KEY ({name}_id) REFERENCES {referent}(id);
DROP TABLE target_{name}_links;
"""
_RESTORE = """
ALTER TABLE {table} ADD COLUMN {name}_id uuid;
UPDATE {table} SET {name}_id = (metadata ->> 'legacy_{name}_id')::uuid,
    metadata = metadata - 'legacy_{name}_id' WHERE metadata ? 'legacy_{name}_id';
UPDATE {table} AS r SET metadata = NULL FROM m014_null_metadata AS n
    WHERE n.slot = '{table}.{name}_id' AND n.id = r.id AND r.metadata = '{{}}';
ALTER TABLE {table} ADD CONSTRAINT {table}_{name}_id_fkey
    FOREIGN KEY ({name}_id) REFERENCES {referent}(id);
"""
_REFERENT = {"goal": "client_goals", "sprint": "sprints"}
_STASHED = (("commitments", "goal"), ("commitments", "sprint"), ("sprints", "goal"))

HAND_UPGRADE = "".join(
    [
        *(_JUNCTION.format(name=n, referent=_REFERENT[n]) for n in ("goal", "sprint")),
        "CREATE TABLE m014_null_metadata (slot text NOT NULL, id uuid NOT NULL);",
        *(_STASH.format(table=t, name=n) for t, n in _STASHED),
        "UPDATE alembic_version SET version_num = 'f06135d685df';",
    ]
)
HAND_DOWNGRADE = "".join(
    [
        *(_COLLAPSE.format(name=n, referent=_REFERENT[n]) for n in ("sprint", "goal")),
        *(_RESTORE.format(table=t, name=n, referent=_REFERENT[n]) for t, n in _STASHED[::-1]),
        "DROP TABLE m014_null_metadata;",
        "UPDATE alembic_version SET version_num = 'e1a0c0de0013';",
    ]
)


def _snapshot(url: str) -> Snapshot:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return take_snapshot(conn)
    finally:
        engine.dispose()


def _run_script(url: str, script: str) -> None:
    with connect(url, autocommit=False) as conn:
        conn.execute(script.encode())
        conn.commit()


def seed_template(server: Server, name: str, rows: int, timer: Timer) -> str:
    url = create_database(server.url, name)
    migrate.upgrade(PROJECT, url, SCENARIO.before)
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with timer.measure("seed"), engine.begin() as conn:
            SCENARIO.seed(conn, rows, SEED)
        with engine.connect() as conn:
            # Same physical starting point for every clone: no pending hint bits or stats.
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return url


@contextmanager
def clone(server: Server, template_url: str) -> Iterator[str]:
    name = f"lossless_bench_{secrets.token_hex(4)}"
    url = create_database(server.url, name, template=database_name(template_url))
    try:
        yield url
    finally:
        drop_database(server.url, name)


def _toolkit(url: str, timer: Timer) -> None:
    with timer.measure("toolkit upgrade"):
        migrate.upgrade(PROJECT, url, SCENARIO.after)
    with timer.measure("toolkit downgrade"):
        migrate.downgrade(PROJECT, url, SCENARIO.before)


def _hand_written(url: str, timer: Timer) -> None:
    with timer.measure("hand-written upgrade"):
        _run_script(url, HAND_UPGRADE)
    with timer.measure("hand-written downgrade"):
        _run_script(url, HAND_DOWNGRADE)


def main() -> None:
    """Seed once, then time both variants on clones; print times and ratios."""
    args = parser(__doc__ or "", default_rows=100_000).parse_args()
    timer = Timer()
    variants: dict[str, Callable[[str, Timer], None]] = {
        "toolkit": _toolkit,
        "hand-written": _hand_written,
    }
    with bench_server(args.url) as server:
        template = f"lossless_bench_m014_{secrets.token_hex(4)}"
        try:
            template_url = seed_template(server, template, args.rows, timer)
            seeded = _snapshot(template_url)
            for _ in range(args.repeat):
                for label, run in variants.items():
                    with clone(server, template_url) as url:
                        run(url, timer)
                        back = diff(seeded, _snapshot(url))
                        if not back.ok:
                            raise SystemExit(f"{label}: round trip changed data:\n{back.render()}")
        finally:
            drop_database(server.url, template)
    t = timer.results
    print(
        f"# {args.rows} targets, {args.rows} commitments; seed {t['seed']:.1f} s; best of "
        f"{args.repeat}; both variants gave back the seeded database exactly"
    )
    rows = []
    for step in ("upgrade", "downgrade"):
        tool, hand = t[f"toolkit {step}"], t[f"hand-written {step}"]
        rows.append([step, tool, hand, f"{tool / hand:.2f}x"])
    tool = t["toolkit upgrade"] + t["toolkit downgrade"]
    hand = t["hand-written upgrade"] + t["hand-written downgrade"]
    rows.append(["both", tool, hand, f"{tool / hand:.2f}x"])
    print_table(["step", "toolkit s", "hand-written s", "ratio"], rows)
    print(f"# client peak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
