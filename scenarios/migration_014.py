"""Scenario migration-014: goals, targets, sprints and commitments move to junction tables.

Revision ``f06135d685df`` turns ``targets.goal_id`` / ``targets.sprint_id`` into the junction
tables ``target_goal_links`` / ``target_sprint_links`` and keeps ``commitments.goal_id``,
``commitments.sprint_id`` and ``sprints.goal_id`` in ``metadata`` under ``legacy_goal_id`` /
``legacy_sprint_id``. Its downgrade takes the first link per target back (``created_at, id``):
the other links are its declared loss.

The seed writes, set-based and deterministically (ids are ``md5(seed/table/n)``, timestamps
fixed), every edge case the refactor must survive, chosen by the row number ``n``:

- ``metadata`` by ``n mod 8``: NULL, ``{}``, unrelated keys, nested objects with arrays and
  JSON nulls, unicode keys and values, look-alike keys and a numeric scale (``1.50``), a
  per-row object, and (only on rows with nothing to stash) JSON that is not an object:
  ``null``, an array, a string;
- nullable FKs by ``(n / 8) mod 4`` (commitments: both, goal only, sprint only, none) and
  ``(n / 8) mod 2`` (sprints: goal or none);
- ``created_at`` ties: three rows share each second;
- commitments linked to zero, one or two targets.

Each row's title also records what the refactor must preserve (``n``, the ``metadata``
variant, the old ``goal=`` / ``sprint=`` ids), so the invariants can prove, after the upgrade
alone, that every old value sits in exactly the right place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from psycopg.sql import SQL
from sqlalchemy import Connection, text

from toolkit.scenario import DeclaredLoss, Invariant, Scenario
from toolkit.sql.idents import ident
from toolkit.sql.run import execute

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "revisions" / "migration_014"
BEFORE = "e1a0c0de0013"
AFTER = "f06135d685df"

#: The ``metadata`` a seeded row ``n`` gets; ``n`` is a column of the enclosing query. Shared
#: by the seed and the invariant that checks the seeded keys survived the upgrade.
METADATA_OF_N = """
CASE mod(n, 8)
    WHEN 0 THEN NULL
    WHEN 1 THEN '{}'::jsonb
    WHEN 2 THEN '{"owner": "ops", "priority": 3}'::jsonb
    WHEN 3 THEN '{"review": {"steps": [1, 2, {"done": false, "note": null}],
                             "by": {"name": "Zoë", "tags": []}}}'::jsonb
    WHEN 4 THEN '{"note": "Café ☕ — 日本語 🚀", "ключ": "значение", "emoji": "✅"}'::jsonb
    WHEN 5 THEN '{"score": 1.50, "legacy": "unrelated", "Legacy_Goal_Id": "not the key",
                  "legacy_goal": "nor this"}'::jsonb
    WHEN 6 THEN jsonb_build_object('row', n, 'even', mod(n, 2) = 0)
    ELSE (ARRAY['null', '[1, "two", {"three": 3}]', '"just text"']::jsonb[])[1 + mod(n / 8, 3)]
END
"""
#: Rows whose ``metadata`` is not a JSON object have nothing stashed into them.
NON_OBJECT_VARIANT = 7


def _uuid(kind: str, number: str) -> str:
    """SQL for the deterministic uuid of row ``number`` of ``kind`` (both SQL expressions)."""
    return f"md5(:tag || '/{kind}/' || {number})::uuid"


# Sizes scale with ``rows`` (the number of targets); the minimums cover every edge case.
_SIZES = """
SELECT greatest(:rows / 10, 10) AS goals, greatest(:rows / 10, 24) AS sprints
"""

_SEED_GOALS = f"""
INSERT INTO client_goals (id, client_id, title, created_at)
SELECT {_uuid("client_goals", "n")},
       {_uuid("clients", "mod(n, 7)")},
       'goal ' || n || CASE WHEN mod(n, 5) = 0 THEN ' · objectif façonné ✓' ELSE '' END,
       timestamp '2024-01-01' + (n / 3) * interval '1 second'
FROM generate_series(0, :goals - 1) AS n
"""  # noqa: S608  (constant fragments only: no input reaches the SQL text)

_SEED_SPRINTS = f"""
INSERT INTO sprints (id, client_id, title, goal_id, metadata, created_at)
SELECT {_uuid("sprints", "n")}, {_uuid("clients", "mod(n, 7)")},
       'sprint ' || n || ' · meta ' || mod(n, 8) || ' · goal=' || coalesce(v.goal_id::text, 'none'),
       v.goal_id, {METADATA_OF_N},
       timestamp '2024-01-01' + (n / 3) * interval '1 second'
FROM generate_series(0, :sprints - 1) AS n
CROSS JOIN LATERAL (
    SELECT CASE WHEN mod(n, 8) <> {NON_OBJECT_VARIANT} AND mod(n / 8, 2) = 0
                THEN {_uuid("client_goals", "mod(n * 7, :goals)")} END AS goal_id
) AS v
"""  # noqa: S608

_SEED_TARGETS = f"""
INSERT INTO targets (id, title, goal_id, sprint_id, created_at)
SELECT {_uuid("targets", "n")},
       'target ' || n || ' · goal=' || v.goal_id || ' · sprint=' || v.sprint_id,
       v.goal_id, v.sprint_id,
       timestamp '2024-01-01' + (n / 3) * interval '1 second'
FROM generate_series(0, :rows - 1) AS n
CROSS JOIN LATERAL (
    SELECT {_uuid("client_goals", "mod(n * 7, :goals)")} AS goal_id,
           {_uuid("sprints", "mod(n * 3, :sprints)")} AS sprint_id
) AS v
"""  # noqa: S608

_SEED_COMMITMENTS = f"""
INSERT INTO commitments (id, client_id, session_id, title, goal_id, sprint_id, metadata,
                         created_at)
SELECT {_uuid("commitments", "n")}, {_uuid("clients", "mod(n, 7)")},
       CASE WHEN mod(n, 3) <> 0 THEN {_uuid("sessions", "n / 10")} END,
       'commitment ' || n || ' · meta ' || mod(n, 8)
           || ' · goal=' || coalesce(v.goal_id::text, 'none')
           || ' · sprint=' || coalesce(v.sprint_id::text, 'none'),
       v.goal_id, v.sprint_id, {METADATA_OF_N},
       timestamp '2024-01-01' + (n / 3) * interval '1 second'
FROM generate_series(0, :rows - 1) AS n
CROSS JOIN LATERAL (SELECT mod(n, 8) <> {NON_OBJECT_VARIANT} AS may_link) AS m
CROSS JOIN LATERAL (
    SELECT CASE WHEN m.may_link AND mod(n / 8, 4) IN (0, 1)
                THEN {_uuid("client_goals", "mod(n * 11, :goals)")} END AS goal_id,
           CASE WHEN m.may_link AND mod(n / 8, 4) IN (0, 2)
                THEN {_uuid("sprints", "mod(n * 5, :sprints)")} END AS sprint_id
) AS v
"""  # noqa: S608

# Commitment n links target n, none when n mod 5 = 4, and also target n + 1 when n mod 7 = 0.
_SEED_COMMITMENT_LINKS = f"""
INSERT INTO commitment_target_links (id, commitment_id, target_id, created_at)
SELECT {_uuid("commitment_target_links", "n || '/' || k")},
       {_uuid("commitments", "n")},
       {_uuid("targets", "mod(n + k, :rows)")},
       timestamp '2024-01-01' + (n / 3) * interval '1 second'
FROM generate_series(0, :rows - 1) AS n
CROSS JOIN generate_series(0, 1) AS k
WHERE mod(n, 5) <> 4 AND (k = 0 OR (mod(n, 7) = 0 AND :rows > 1))
"""  # noqa: S608

_SEED_STEPS = (
    _SEED_GOALS,
    _SEED_SPRINTS,
    _SEED_TARGETS,
    _SEED_COMMITMENTS,
    _SEED_COMMITMENT_LINKS,
)


_TABLES = ("client_goals", "sprints", "targets", "commitments", "commitment_target_links")

_FOREIGN_KEYS = text("""
SELECT k.conrelid::regclass::text AS "table", k.conname AS name,
       pg_get_constraintdef(k.oid) AS definition
FROM pg_constraint AS k
WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace
  AND k.conrelid::regclass::text = ANY(:tables)
ORDER BY k.conname
""")


@contextmanager
def _foreign_keys_added_after(conn: Connection, tables: Sequence[str]) -> Iterator[None]:
    """Drop the FKs of ``tables``, run the block, re-add them: same names, same definitions.

    Loading first and validating each FK once afterwards (one join) is more than twice as
    fast at 1M rows as checking every inserted row through the FK triggers.
    """
    keys = conn.execute(_FOREIGN_KEYS, {"tables": list(tables)}).all()
    for key in keys:
        execute(
            conn, SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(ident(key.table), ident(key.name))
        )
    yield
    for key in keys:
        add = SQL("ALTER TABLE {} ADD CONSTRAINT {} {}")
        execute(conn, add.format(ident(key.table), ident(key.name), SQL(key.definition)))


def seed(conn: Connection, rows: int, seed: int) -> None:
    """Fill the migration 013 schema: ``rows`` targets and commitments, scaled goals/sprints.

    Run it inside a transaction: the foreign keys are re-added (and so checked) at the end.
    """
    if rows < 1:
        raise ValueError("migration-014 needs at least one target")
    params: dict[str, object] = {"rows": rows, "tag": str(seed)}
    sizes = conn.execute(text(_SIZES), params).one()
    params.update(goals=sizes.goals, sprints=sizes.sprints)
    with _foreign_keys_added_after(conn, _TABLES):
        for statement in _SEED_STEPS:
            conn.execute(text(statement), params)
    for table in _TABLES:
        execute(conn, SQL("ANALYZE {}").format(ident(table)))


# --- invariants: checked right after the upgrade, each selecting the violating rows --------


def _one_link_per_target(junction: str, column: str) -> str:
    # The title recorded the target's old value: it must be its one and only link.
    return f"""
SELECT t.id
FROM targets AS t
LEFT JOIN {junction} AS l ON l.target_id = t.id
GROUP BY t.id, t.title
HAVING count(l.id) <> 1
    OR bool_and(l.{column} = substring(t.title from '{column[:-3]}=([0-9a-f-]{{36}})')::uuid)
       IS NOT TRUE
"""  # noqa: S608  (constant names only)


def _legacy_in_metadata(table: str, column: str, key: str) -> str:
    # Present exactly when the old value was not NULL, as its text, under the key.
    return f"""
SELECT r.id
FROM {table} AS r
WHERE r.metadata -> '{key}'
      IS DISTINCT FROM to_jsonb(substring(r.title from '{column[:-3]}=([0-9a-f-]{{36}})'))
"""  # noqa: S608  (constant names only)


def _seeded_metadata_kept(table: str, *legacy_keys: str) -> str:
    # Without the legacy keys, metadata is exactly what was seeded (a seeded NULL that got
    # a value shows as {} here: the stash remembers it was NULL); rows that got nothing
    # stashed are untouched, whatever their JSON (NULL, JSON null, an array, a string).
    stripped = "r.metadata" + "".join(f" - '{key}'" for key in legacy_keys)
    return f"""
SELECT r.id
FROM {table} AS r
CROSS JOIN LATERAL (SELECT substring(r.title from '^[a-z]+ ([0-9]+) ')::int AS n) AS k
CROSS JOIN LATERAL (SELECT {METADATA_OF_N} AS seeded) AS s
WHERE CASE
    WHEN r.title ~ '(goal|sprint)=[0-9a-f]'
        THEN jsonb_typeof(r.metadata) IS DISTINCT FROM 'object'
          OR {stripped} IS DISTINCT FROM coalesce(s.seeded, '{{}}')
    ELSE r.metadata IS DISTINCT FROM s.seeded
END
"""  # noqa: S608  (constant fragments only)


REMOVED_COLUMNS = (
    ("targets", "goal_id"),
    ("targets", "sprint_id"),
    ("commitments", "goal_id"),
    ("commitments", "sprint_id"),
    ("sprints", "goal_id"),
)
_REMOVED = """
SELECT c.table_name || '.' || c.column_name
FROM information_schema.columns AS c
WHERE c.table_schema = current_schema()
  AND (c.table_name, c.column_name) IN (('targets', 'goal_id'), ('targets', 'sprint_id'),
      ('commitments', 'goal_id'), ('commitments', 'sprint_id'), ('sprints', 'goal_id'))
UNION ALL
SELECT k.conname
FROM pg_constraint AS k
WHERE k.connamespace = current_schema()::regnamespace
  AND k.conname IN ('targets_goal_id_fkey', 'targets_sprint_id_fkey', 'sprints_goal_id_fkey',
                    'commitments_goal_id_fkey', 'commitments_sprint_id_fkey')
"""

INVARIANTS = (
    Invariant(
        "every old targets.goal_id is exactly one goal link",
        _one_link_per_target("target_goal_links", "goal_id"),
    ),
    Invariant(
        "every old targets.sprint_id is exactly one sprint link",
        _one_link_per_target("target_sprint_links", "sprint_id"),
    ),
    Invariant(
        "every non-NULL commitments.goal_id is in metadata.legacy_goal_id",
        _legacy_in_metadata("commitments", "goal_id", "legacy_goal_id"),
    ),
    Invariant(
        "every non-NULL commitments.sprint_id is in metadata.legacy_sprint_id",
        _legacy_in_metadata("commitments", "sprint_id", "legacy_sprint_id"),
    ),
    Invariant(
        "every non-NULL sprints.goal_id is in metadata.legacy_goal_id",
        _legacy_in_metadata("sprints", "goal_id", "legacy_goal_id"),
    ),
    Invariant(
        "commitments: other metadata keys untouched",
        _seeded_metadata_kept("commitments", "legacy_goal_id", "legacy_sprint_id"),
    ),
    Invariant(
        "sprints: other metadata keys untouched", _seeded_metadata_kept("sprints", "legacy_goal_id")
    ),
    Invariant("the five FK columns and their five FKs are gone", _REMOVED),
)


# --- the downgrade's declared loss: links beyond the first per target ----------------------


def _links_beyond_first(junction: str) -> str:
    return f"""
SELECT count(*)
FROM (
    SELECT row_number() OVER (PARTITION BY target_id ORDER BY created_at, id) AS rank
    FROM {junction}
) AS ranked
WHERE rank > 1
"""  # noqa: S608  (constant names only)


DECLARED_LOSSES = tuple(
    DeclaredLoss(
        name=f"{junction}: links beyond the first per target",
        table=junction,
        column=column,
        expected_sql=_links_beyond_first(junction),
        description=(
            f"targets.{column} holds one value: the downgrade keeps each target's first link "
            "(created_at, id) and loses the others, unless keep_extra_links stashes them"
        ),
    )
    for junction, column in (("target_goal_links", "goal_id"), ("target_sprint_links", "sprint_id"))
)


# --- the new shape: targets with several goals and several sprints -------------------------

#: (extra link number, created_at): two links tied before the upgrade's own link (the one
#: with the smaller id must win the downgrade), and one after it.
_EXTRA_LINKS = """
(VALUES (1, timestamp '2024-06-01'), (2, timestamp '2024-06-01'), (3, timestamp '2100-01-01'))
"""


def _extra_links(junction: str, column: str, referent_table: str) -> str:
    # Every 10th target (by id) gets all three extra links; every 10th + 5 only the late one.
    return f"""
INSERT INTO {junction} (id, target_id, {column}, created_at)
SELECT md5(:tag || '/{junction}/extra/' || t.n || '/' || x.k)::uuid, t.id, r.id, x.created_at
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM targets) AS t
CROSS JOIN {_EXTRA_LINKS} AS x(k, created_at)
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM {referent_table}) AS r
  ON r.i = mod(t.n * 13 + x.k, (SELECT count(*) FROM {referent_table}))
WHERE mod(t.n, 10) = 0 OR (mod(t.n, 10) = 5 AND x.k = 3)
ON CONFLICT DO NOTHING
"""  # noqa: S608  (constant fragments only)


_NEW_SHAPE_STEPS = (
    _extra_links("target_goal_links", "goal_id", "client_goals"),
    _extra_links("target_sprint_links", "sprint_id", "sprints"),
)


def new_shape(conn: Connection, seed: int) -> None:
    """Give some targets several goals and several sprints, with created_at ties."""
    for statement in _NEW_SHAPE_STEPS:
        conn.execute(text(statement), {"tag": str(seed)})


SCENARIO = Scenario(
    name="migration-014",
    description=(
        "goals, targets, sprints and commitments move from FK columns to junction tables; "
        "redundant FK columns are kept in metadata"
    ),
    script_location=SCRIPT_LOCATION,
    before=BEFORE,
    after=AFTER,
    seed=seed,
    invariants=INVARIANTS,
    declared_losses=DECLARED_LOSSES,
    volatile_columns={
        "target_goal_links": ("id", "created_at"),
        "target_sprint_links": ("id", "created_at"),
    },
    new_shape=new_shape,
)
