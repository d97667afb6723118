"""Scenario migration-014 on real PostgreSQL.

Integration tests follow describe -> forward -> assert data -> backward -> assert identical.
The rows are read back as plain values (``metadata::text``, so SQL NULL and JSON ``null``
stay apart) and compared here, in the test, independently of the toolkit's snapshot code;
the snapshot ``diff`` is checked as well.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, Row
from sqlalchemy.pool import NullPool

from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import DataRefusedError, UsageError
from toolkit.migrate import Project
from toolkit.ops.results import OpResult
from toolkit.postgres import Server, connect, scratch_database
from toolkit.postgres.url import sqlalchemy_url
from toolkit.roundtrip import RoundTripReport, run_scenario_roundtrip
from toolkit.verify import Snapshot, diff, take_snapshot

SCENARIO = get_scenario("migration-014")
PROJECT = Project.for_scenario(SCENARIO)
BEFORE, AFTER = SCENARIO.before, SCENARIO.after
ROWS = 96  # >= 32 commitments: every (metadata variant, nullable FKs) pair of the seed
SEED = 7

Rows = dict[UUID, Row[Any]]
State = dict[str, Rows]

#: What each table holds before the upgrade (and must hold again after the downgrade).
CAPTURE_BEFORE = {
    "client_goals": "SELECT id, client_id, title, created_at FROM client_goals",
    "sprints": "SELECT id, client_id, title, goal_id, metadata::text AS metadata, created_at"
    " FROM sprints",
    "targets": "SELECT id, title, goal_id, sprint_id, created_at FROM targets",
    "commitments": "SELECT id, client_id, session_id, title, goal_id, sprint_id,"
    " metadata::text AS metadata, created_at FROM commitments",
    "commitment_target_links": "SELECT id, commitment_id, target_id, created_at"
    " FROM commitment_target_links",
}
CAPTURE_AFTER = {
    "sprints": "SELECT id, title, metadata::text AS metadata FROM sprints",
    "commitments": "SELECT id, title, metadata::text AS metadata FROM commitments",
}
LINKS = {"goal_id": "target_goal_links", "sprint_id": "target_sprint_links"}
LEGACY_KEYS = {"goal_id": "legacy_goal_id", "sprint_id": "legacy_sprint_id"}
#: The seed's metadata that is not a JSON object (only on rows with nothing to stash).
NON_OBJECTS = {"null", '[1, "two", {"three": 3}]', '"just text"'}
FIVE_FKS = {
    ("targets", "targets_goal_id_fkey"): "FOREIGN KEY (goal_id) REFERENCES client_goals(id)",
    ("targets", "targets_sprint_id_fkey"): "FOREIGN KEY (sprint_id) REFERENCES sprints(id)",
    ("sprints", "sprints_goal_id_fkey"): "FOREIGN KEY (goal_id) REFERENCES client_goals(id)",
    ("commitments", "commitments_goal_id_fkey"): (
        "FOREIGN KEY (goal_id) REFERENCES client_goals(id)"
    ),
    ("commitments", "commitments_sprint_id_fkey"): (
        "FOREIGN KEY (sprint_id) REFERENCES sprints(id)"
    ),
}


# --- helpers -----------------------------------------------------------------------------


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def _seeded(url: str, *, rows: int = ROWS, seed: int = SEED) -> None:
    """Upgrade a fresh database to the migration 013 schema and seed it."""
    migrate.upgrade(PROJECT, url, BEFORE)
    with _engine(url) as engine, engine.begin() as conn:
        SCENARIO.seed(conn, rows, seed)


def _capture(conn: Connection, queries: Mapping[str, str]) -> State:
    return {
        table: {row.id: row for row in conn.execute(sa.text(sql))} for table, sql in queries.items()
    }


def _links(conn: Connection, junction: str, column: str) -> list[tuple[Any, ...]]:
    sql = f"SELECT target_id, {column}, created_at, id FROM {junction}"  # noqa: S608
    return sorted(tuple(r) for r in conn.execute(sa.text(sql)))


def _constraints(conn: Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = to_regclass(:table)"
            "   AND contype <> 'n'"  # PostgreSQL 18 lists NOT NULL too: checked as columns
        ),
        {"table": table},
    )
    return {name: definition for name, definition in rows}


def _indexes(conn: Connection, table: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"),
        {"table": table},
    )
    return {name: definition for name, definition in rows}


def _columns(conn: Connection, table: str) -> dict[str, tuple[str, bool, str | None]]:
    rows = conn.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute AS a"
            " LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        {"table": table},
    )
    return {name: (type_, notnull, default) for name, type_, notnull, default in rows}


def _tables(conn: Connection) -> set[str]:
    return set(
        conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
    )


def _violations(conn: Connection) -> dict[str, list[Any]]:
    return {inv.name: [r[0] for r in conn.execute(sa.text(inv.sql))] for inv in SCENARIO.invariants}


def _snapshot(url: str) -> Snapshot:
    with _engine(url) as engine, engine.connect() as conn:
        return take_snapshot(conn)


def _counts(results: list[OpResult], operation: str) -> list[dict[str, int]]:
    return [dict(r.counts) for r in results if r.operation == operation]


def _meta(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _first_links(links: list[tuple[Any, ...]]) -> dict[UUID, Any]:
    """Per target, the referent of its first link by (created_at, id): computed here."""
    first: dict[UUID, tuple[Any, ...]] = {}
    for target, referent, created_at, link_id in links:
        best = first.get(target)
        if best is None or (created_at, link_id) < best[:2]:
            first[target] = (created_at, link_id, referent)
    return {target: value[2] for target, value in first.items()}


# --- the journey: seed -> upgrade -> downgrade, captured once for the tests below ----------


@dataclass(frozen=True)
class Journey:
    before: State
    after: State
    back: State
    links: dict[str, list[tuple[Any, ...]]]
    violations: dict[str, list[Any]]
    upgraded: list[OpResult]
    downgraded: list[OpResult]
    constraints_after: dict[str, dict[str, str]]
    indexes_after: dict[str, dict[str, str]]
    columns_after: dict[str, dict[str, tuple[str, bool, str | None]]]
    constraints_back: dict[str, dict[str, str]]
    columns_back: dict[str, dict[str, tuple[str, bool, str | None]]]
    tables_back: set[str]
    back_vs_before: str


@pytest.fixture(scope="module")
def journey(lossless_server: Server) -> Iterator[Journey]:
    with scratch_database(lossless_server.url, prefix="lossless_m014") as url:
        _seeded(url)
        s0 = _snapshot(url)
        with _engine(url) as engine, engine.connect() as conn:
            before = _capture(conn, CAPTURE_BEFORE)
        upgraded = migrate.upgrade(PROJECT, url, AFTER)
        with _engine(url) as engine, engine.connect() as conn:
            after = _capture(conn, CAPTURE_AFTER)
            links = {column: _links(conn, LINKS[column], column) for column in LINKS}
            violations = _violations(conn)
            junctions = LINKS.values()
            constraints_after = {t: _constraints(conn, t) for t in junctions}
            indexes_after = {t: _indexes(conn, t) for t in junctions}
            columns_after = {t: _columns(conn, t) for t in [*junctions, *CAPTURE_BEFORE]}
        downgraded = migrate.downgrade(PROJECT, url, BEFORE)
        with _engine(url) as engine, engine.connect() as conn:
            back = _capture(conn, CAPTURE_BEFORE)
            constraints_back = {t: _constraints(conn, t) for t in CAPTURE_BEFORE}
            columns_back = {t: _columns(conn, t) for t in CAPTURE_BEFORE}
            tables_back = _tables(conn)
        yield Journey(
            before=before,
            after=after,
            back=back,
            links=links,
            violations=violations,
            upgraded=upgraded,
            downgraded=downgraded,
            constraints_after=constraints_after,
            indexes_after=indexes_after,
            columns_after=columns_after,
            constraints_back=constraints_back,
            columns_back=columns_back,
            tables_back=tables_back,
            back_vs_before=diff(s0, _snapshot(url)).render(),
        )


# --- the scenario and its revisions ------------------------------------------------------


def test_scenario_names_its_revisions() -> None:
    assert (SCENARIO.name, SCENARIO.before, SCENARIO.after) == (
        "migration-014",
        "e1a0c0de0013",
        "f06135d685df",
    )
    assert [(r.revision, r.message) for r in migrate.history(PROJECT)] == [
        ("e1a0c0de0013", "migration 013 schema"),
        ("f06135d685df", "add many-to-many junction tables and remove redundant columns"),
    ]


def test_pre_refactor_schema_is_the_contract(conn: Connection, lossless_database: str) -> None:
    migrate.upgrade(PROJECT, lossless_database, BEFORE)
    uuid_pk = ("uuid", True, "gen_random_uuid()")
    created_at = ("timestamp without time zone", True, "now()")
    uuid_nn, uuid_null = ("uuid", True, None), ("uuid", False, None)
    text_nn, jsonb_null = ("text", True, None), ("jsonb", False, None)
    assert {t: _columns(conn, t) for t in CAPTURE_BEFORE} == {
        "client_goals": {
            "id": uuid_pk,
            "client_id": uuid_nn,
            "title": text_nn,
            "created_at": created_at,
        },
        "sprints": {
            "id": uuid_pk,
            "client_id": uuid_nn,
            "title": text_nn,
            "goal_id": uuid_null,
            "metadata": jsonb_null,
            "created_at": created_at,
        },
        "targets": {
            "id": uuid_pk,
            "title": text_nn,
            "goal_id": uuid_nn,
            "sprint_id": uuid_nn,
            "created_at": created_at,
        },
        "commitments": {
            "id": uuid_pk,
            "client_id": uuid_nn,
            "session_id": uuid_null,
            "title": text_nn,
            "goal_id": uuid_null,
            "sprint_id": uuid_null,
            "metadata": jsonb_null,
            "created_at": created_at,
        },
        "commitment_target_links": {
            "id": uuid_pk,
            "commitment_id": uuid_nn,
            "target_id": uuid_nn,
            "created_at": created_at,
        },
    }
    constraints = {(t, n): d for t in CAPTURE_BEFORE for n, d in _constraints(conn, t).items()}
    assert constraints == {
        **FIVE_FKS,
        **{(t, f"{t}_pkey"): "PRIMARY KEY (id)" for t in CAPTURE_BEFORE},
        ("commitment_target_links", "commitment_target_links_commitment_id_fkey"): (
            "FOREIGN KEY (commitment_id) REFERENCES commitments(id) ON DELETE CASCADE"
        ),
        ("commitment_target_links", "commitment_target_links_target_id_fkey"): (
            "FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE"
        ),
        ("commitment_target_links", "commitment_target_links_commitment_id_target_id_key"): (
            "UNIQUE (commitment_id, target_id)"
        ),
    }


# --- the seed ----------------------------------------------------------------------------


def test_seed_covers_every_edge_case(conn: Connection, lossless_database: str) -> None:
    _seeded(lossless_database)
    cases: dict[str, int] = dict(
        conn.execute(
            sa.text(
                """
                SELECT 'commitment metadata ' || coalesce(jsonb_typeof(metadata), 'SQL NULL')
                       || CASE WHEN metadata = '{}' THEN ' {}' ELSE '' END
                       || CASE WHEN goal_id IS NULL THEN ', no goal' ELSE ', goal' END, count(*)
                FROM commitments GROUP BY 1
                UNION ALL
                SELECT 'commitment ' || (goal_id IS NULL)::text || '/' || (sprint_id IS NULL)::text,
                       count(*)
                FROM commitments GROUP BY 1
                UNION ALL
                SELECT 'sprint metadata ' || coalesce(jsonb_typeof(metadata), 'SQL NULL')
                       || CASE WHEN goal_id IS NULL THEN ', no goal' ELSE ', goal' END, count(*)
                FROM sprints GROUP BY 1
                UNION ALL
                SELECT 'nested', count(*) FROM commitments WHERE metadata @? '$.*.*.*'
                UNION ALL
                SELECT 'unicode', count(*) FROM commitments WHERE metadata::text ~ '[^\\x01-\\x7e]'
                UNION ALL
                SELECT 'target created_at ties', count(*) FROM (
                    SELECT created_at FROM targets GROUP BY 1 HAVING count(*) > 1) AS t
                UNION ALL
                SELECT 'commitments with ' || n || ' target(s)', count(*) FROM (
                    SELECT c.id, count(l.id) AS n FROM commitments AS c
                    LEFT JOIN commitment_target_links AS l ON l.commitment_id = c.id
                    GROUP BY c.id) AS per GROUP BY n
                """
            )
        ).all()
    )
    expected = [
        *[
            f"commitment metadata {kind}, {goal}"
            for kind in ("SQL NULL", "object {}", "object")
            for goal in ("goal", "no goal")
        ],
        *[f"commitment metadata {kind}, no goal" for kind in ("null", "array", "string")],
        *[f"commitment {g}/{s}" for g in ("true", "false") for s in ("true", "false")],
        *[
            f"sprint metadata {kind}, {goal}"
            for kind in ("SQL NULL", "object")
            for goal in ("goal", "no goal")
        ],
        "nested",
        "unicode",
        "target created_at ties",
        *[f"commitments with {n} target(s)" for n in (0, 1, 2)],
    ]
    missing = [case for case in expected if cases.get(case, 0) == 0]
    assert not missing, f"the seed lacks: {missing}"
    counts = {
        t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
        for t in CAPTURE_BEFORE
    }
    assert counts["targets"] == counts["commitments"] == ROWS


def test_seed_is_deterministic(lossless_database: str) -> None:
    _seeded(lossless_database)
    first = _snapshot(lossless_database)

    def reseed(seed: int) -> Snapshot:
        with _engine(lossless_database) as engine, engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE " + ", ".join(CAPTURE_BEFORE)))
            SCENARIO.seed(conn, ROWS, seed)
        return _snapshot(lossless_database)

    assert diff(first, reseed(SEED)).ok
    assert not diff(first, reseed(SEED + 1)).ok


# --- forward: the upgrade ----------------------------------------------------------------


def test_every_target_value_becomes_exactly_one_link(journey: Journey) -> None:
    targets = journey.before["targets"].values()
    for column, links in journey.links.items():
        assert sorted((link[0], link[1]) for link in links) == sorted(
            (t.id, getattr(t, column)) for t in targets
        ), column
    assert len(journey.links["goal_id"]) == len(journey.links["sprint_id"]) == ROWS


def test_upgrade_reports_what_it_moved_and_stashed(journey: Journey) -> None:
    before = journey.before
    stashed = [
        sum(getattr(r, column) is not None for r in before[table].values())
        for table, column in (
            ("commitments", "goal_id"),
            ("commitments", "sprint_id"),
            ("sprints", "goal_id"),
        )
    ]
    assert _counts(journey.upgraded, "promote_fk_to_junction") == [
        {"moved": ROWS, "lost": 0},
        {"moved": ROWS, "lost": 0},
    ]
    assert _counts(journey.upgraded, "stash_column_in_jsonb") == [
        {"stashed": n, "lost": 0} for n in stashed
    ]
    assert all(n > 0 for n in stashed)


def test_junction_tables_have_the_designed_shape(journey: Journey) -> None:
    for column, junction in LINKS.items():
        referent = "client_goals" if column == "goal_id" else "sprints"
        unique = "uq_target_goal" if column == "goal_id" else "uq_target_sprint"
        constraints = journey.constraints_after[junction]
        assert constraints[unique] == f"UNIQUE (target_id, {column})"
        assert constraints[f"{junction}_pkey"] == "PRIMARY KEY (id)"
        assert sorted(d for d in constraints.values() if d.startswith("FOREIGN KEY")) == [
            f"FOREIGN KEY ({column}) REFERENCES {referent}(id) ON DELETE CASCADE",
            "FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE",
        ]
        indexes = journey.indexes_after[junction]
        for indexed in ("target_id", column):
            name = f"ix_{junction}_{indexed}"
            assert indexes[name].endswith(f"{junction} USING btree ({indexed})"), indexes
        assert journey.columns_after[junction] == {
            "id": ("uuid", True, "gen_random_uuid()"),
            "target_id": ("uuid", True, None),
            column: ("uuid", True, None),
            "created_at": ("timestamp with time zone", True, "now()"),
        }


def test_five_columns_and_fks_are_gone(journey: Journey) -> None:
    for table, column in (
        ("targets", "goal_id"),
        ("targets", "sprint_id"),
        ("commitments", "goal_id"),
        ("commitments", "sprint_id"),
        ("sprints", "goal_id"),
    ):
        assert column not in journey.columns_after[table], f"{table}.{column}"
    # the invariant says so too; it is shown to catch a leftover column further down
    assert journey.violations["the five FK columns and their five FKs are gone"] == []


def test_invariants_hold_after_upgrade(journey: Journey) -> None:
    assert {name: rows for name, rows in journey.violations.items() if rows} == {}
    assert len(journey.violations) == 8


def test_legacy_ids_sit_in_metadata_under_their_keys(journey: Journey) -> None:
    checked = 0
    for table, columns in (("commitments", ("goal_id", "sprint_id")), ("sprints", ("goal_id",))):
        for row in journey.before[table].values():
            after = _meta(journey.after[table][row.id].metadata)
            for column in columns:
                value = getattr(row, column)
                if value is None:
                    continue
                assert after[LEGACY_KEYS[column]] == str(value), (table, row.title)
                checked += 1
    assert checked > ROWS // 2


# --- backward: the downgrade gives everything back --------------------------------------


def test_downgrade_gives_back_every_row_exactly(journey: Journey) -> None:
    for table, rows in journey.before.items():
        assert journey.back[table] == rows, table
    # Identical; the only notes say that the re-added columns are now last in their tables.
    first, *notes = journey.back_vs_before.splitlines()
    assert first == "no differences"
    assert all(n.startswith("note: column order of ") for n in notes)


def test_downgrade_reports_collapsed_and_restored(journey: Journey) -> None:
    assert _counts(journey.downgraded, "collapse_junction_to_fk") == [
        {"collapsed": ROWS, "lost": 0},
        {"collapsed": ROWS, "lost": 0},
    ]
    restored = [c["restored"] for c in _counts(journey.downgraded, "restore_column_from_jsonb")]
    stashed = [c["stashed"] for c in _counts(journey.upgraded, "stash_column_in_jsonb")]
    assert restored == stashed[::-1]


def test_downgrade_recreates_the_five_fks_by_name_and_not_null(journey: Journey) -> None:
    for (table, name), definition in FIVE_FKS.items():
        assert journey.constraints_back[table][name] == definition
    assert journey.columns_back["targets"]["goal_id"] == ("uuid", True, None)
    assert journey.columns_back["targets"]["sprint_id"] == ("uuid", True, None)
    assert journey.columns_back["commitments"]["goal_id"] == ("uuid", False, None)
    assert journey.tables_back == {*CAPTURE_BEFORE, "alembic_version"}


def _cases(journey: Journey, predicate: Any) -> list[tuple[str, Row[Any]]]:
    found = [
        (table, row)
        for table in ("commitments", "sprints")
        for row in journey.before[table].values()
        if predicate(row)
    ]
    assert found, "the seed has no such row"
    return found


def _stashed_something(row: Row[Any]) -> bool:
    return row.goal_id is not None or getattr(row, "sprint_id", None) is not None


def test_metadata_null_comes_back_null(journey: Journey) -> None:
    for table, row in _cases(journey, lambda r: r.metadata is None and _stashed_something(r)):
        after = _meta(journey.after[table][row.id].metadata)
        assert isinstance(after, dict) and set(after) <= set(LEGACY_KEYS.values())
        assert journey.back[table][row.id].metadata is None


def test_empty_object_comes_back_empty(journey: Journey) -> None:
    for table, row in _cases(journey, lambda r: r.metadata == "{}" and _stashed_something(r)):
        assert _meta(journey.after[table][row.id].metadata) != {}
        assert journey.back[table][row.id].metadata == "{}"


def test_unrelated_keys_kept(journey: Journey) -> None:
    def has_keys(row: Row[Any]) -> bool:
        return bool(isinstance(_meta(row.metadata), dict) and _meta(row.metadata))

    for table, row in _cases(journey, has_keys):
        after = _meta(journey.after[table][row.id].metadata)
        kept = {k: v for k, v in after.items() if k not in LEGACY_KEYS.values()}
        assert kept == _meta(row.metadata), (table, row.title)
        assert journey.back[table][row.id].metadata == row.metadata


def test_nested_and_unicode_metadata_come_back_identical(journey: Journey) -> None:
    markers = ('"Zoë"', "日本語 🚀", '"ключ"', '"score": 1.50', '"note": null')
    for marker in markers:
        for table, row in _cases(journey, lambda r, m=marker: m in (r.metadata or "")):
            assert journey.back[table][row.id].metadata == row.metadata


def test_non_object_metadata_untouched(journey: Journey) -> None:
    for table, row in _cases(journey, lambda r: r.metadata in NON_OBJECTS):
        assert journey.after[table][row.id].metadata == row.metadata
        assert journey.back[table][row.id].metadata == row.metadata


def test_nullable_fk_null_stays_null(journey: Journey) -> None:
    for column in ("goal_id", "sprint_id"):
        for table, row in _cases(
            journey, lambda r, c=column: c in r._fields and getattr(r, c) is None
        ):
            after = _meta(journey.after[table][row.id].metadata)
            assert not (isinstance(after, dict) and LEGACY_KEYS[column] in after)
            assert getattr(journey.back[table][row.id], column) is None


# --- the new shape: several goals and sprints per target, then downgrade -----------------


@dataclass(frozen=True)
class Reshaped:
    links: dict[str, list[tuple[Any, ...]]]
    expected_losses: dict[str, int]
    downgraded: list[OpResult]
    targets_back: Rows


@pytest.fixture(scope="module")
def reshaped(lossless_server: Server) -> Iterator[Reshaped]:
    assert SCENARIO.new_shape is not None
    with scratch_database(lossless_server.url, prefix="lossless_m014") as url:
        _seeded(url)
        migrate.upgrade(PROJECT, url, AFTER)
        with _engine(url) as engine, engine.begin() as conn:
            SCENARIO.new_shape(conn, SEED)
        with _engine(url) as engine, engine.connect() as conn:
            links = {column: _links(conn, LINKS[column], column) for column in LINKS}
            expected = {
                loss.table: conn.execute(sa.text(loss.expected_sql)).scalar_one()
                for loss in SCENARIO.declared_losses
            }
        downgraded = migrate.downgrade(PROJECT, url, BEFORE)
        with _engine(url) as engine, engine.connect() as conn:
            targets = _capture(conn, {"targets": CAPTURE_BEFORE["targets"]})["targets"]
        yield Reshaped(links, expected, downgraded, targets)


def test_new_shape_downgrade_keeps_the_first_link_per_target(reshaped: Reshaped) -> None:
    for column, links in reshaped.links.items():
        first = _first_links(links)
        assert {t: getattr(row, column) for t, row in reshaped.targets_back.items()} == first
        several = Counter(link[0] for link in links)
        assert sum(n > 1 for n in several.values()) >= ROWS // 10, "too few reshaped targets"


def test_created_at_tie_first_link_by_id(reshaped: Reshaped) -> None:
    ties = 0
    for column, links in reshaped.links.items():
        per_target: dict[UUID, list[tuple[Any, ...]]] = {}
        for link in links:
            per_target.setdefault(link[0], []).append(link)
        for target, own in per_target.items():
            earliest = min(link[2] for link in own)
            tied = [link for link in own if link[2] == earliest]
            if len(tied) < 2:
                continue
            ties += 1
            winner = min(tied, key=lambda link: link[3])  # the smaller id
            loser = max(tied, key=lambda link: link[3])
            restored = getattr(reshaped.targets_back[target], column)
            assert restored == winner[1] != loser[1]
    assert ties >= 2


def test_new_shape_loss_is_declared_and_counted(reshaped: Reshaped) -> None:
    for column, junction in LINKS.items():
        counted_here = len(reshaped.links[column]) - ROWS
        assert counted_here > 0
        assert reshaped.expected_losses[junction] == counted_here
    reported = [c["lost"] for c in _counts(reshaped.downgraded, "collapse_junction_to_fk")]
    assert reported == [
        len(reshaped.links["sprint_id"]) - ROWS,
        len(reshaped.links["goal_id"]) - ROWS,
    ]


def test_keep_extra_links_loses_nothing(lossless_database: str) -> None:
    assert SCENARIO.new_shape is not None
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    with _engine(lossless_database) as engine, engine.begin() as conn:
        SCENARIO.new_shape(conn, SEED)
        before = {column: _links(conn, LINKS[column], column) for column in LINKS}
    down = migrate.downgrade(PROJECT, lossless_database, BEFORE, x={"keep_extra_links": "true"})
    collapsed = _counts(down, "collapse_junction_to_fk")
    assert [c["lost"] for c in collapsed] == [0, 0]
    several = {
        column: {t for t, n in Counter(link[0] for link in before[column]).items() if n > 1}
        for column in LINKS
    }
    extras = [len(before[column]) - 40 for column in ("sprint_id", "goal_id")]
    assert all(n > 0 for n in extras)
    # the stash holds at least the extra links (the op may keep the first one too)
    assert [c["stashed"] >= n for c, n in zip(collapsed, extras, strict=True)] == [True, True]
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    with _engine(lossless_database) as engine, engine.connect() as conn:
        again = {column: _links(conn, LINKS[column], column) for column in LINKS}
    for column in LINKS:
        # every link is back; those of targets with several links verbatim (id, created_at)
        assert [link[:2] for link in again[column]] == [link[:2] for link in before[column]]
        kept = {link for link in before[column] if link[0] in several[column]}
        assert kept <= set(again[column])


# --- refusals and policies ----------------------------------------------------------------


def _unlink(url: str, junction: str, count: int) -> list[UUID]:
    """Delete every link of ``count`` targets; returns those targets."""
    with _engine(url) as engine, engine.begin() as conn:
        targets = (
            conn.execute(sa.text("SELECT id FROM targets ORDER BY id LIMIT :n"), {"n": count})
            .scalars()
            .all()
        )
        conn.execute(
            sa.text(f"DELETE FROM {junction} WHERE target_id = ANY(:ids)"),  # noqa: S608
            {"ids": list(targets)},
        )
    return list(targets)


@pytest.mark.parametrize("column", ["goal_id", "sprint_id"])
def test_downgrade_refuses_target_without_link(lossless_database: str, column: str) -> None:
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    unlinked = _unlink(lossless_database, LINKS[column], 2)
    before = _snapshot(lossless_database)
    with pytest.raises(DataRefusedError) as refused:
        migrate.downgrade(PROJECT, lossless_database, BEFORE)
    error = refused.value
    assert (error.table, error.column, error.count) == ("targets", column, 2)
    assert sorted(str(s) for s in error.samples) == sorted(str(t) for t in unlinked)
    assert "targets." + column in str(error) and "on_missing" in str(error)
    assert migrate.current(PROJECT, lossless_database) == (AFTER,)
    assert diff(before, _snapshot(lossless_database)).render() == "no differences"


def test_keep_null_policy_lets_the_downgrade_through(lossless_database: str) -> None:
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    unlinked = _unlink(lossless_database, "target_goal_links", 3)
    migrate.downgrade(PROJECT, lossless_database, BEFORE, x={"on_missing": "keep_null"})
    with _engine(lossless_database) as engine, engine.connect() as conn:
        targets = _capture(conn, {"targets": CAPTURE_BEFORE["targets"]})["targets"]
        goal_id = _columns(conn, "targets")["goal_id"]
        sprint_id = _columns(conn, "targets")["sprint_id"]
    assert {t for t, row in targets.items() if row.goal_id is None} == set(unlinked)
    assert goal_id == ("uuid", False, None)  # left nullable, as the policy says
    assert sprint_id == ("uuid", True, None)  # nothing was missing there: NOT NULL as before


def test_fill_policy_gives_the_fill_value(lossless_database: str) -> None:
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    unlinked = _unlink(lossless_database, "target_goal_links", 2)
    with _engine(lossless_database) as engine, engine.connect() as conn:
        goal = conn.execute(sa.text("SELECT min(title), min(id::text) FROM client_goals")).one()
    migrate.downgrade(
        PROJECT,
        lossless_database,
        BEFORE,
        x={"on_missing": "fill", "fill_goal_id": goal[1]},
    )
    with _engine(lossless_database) as engine, engine.connect() as conn:
        targets = _capture(conn, {"targets": CAPTURE_BEFORE["targets"]})["targets"]
        assert _columns(conn, "targets")["goal_id"] == ("uuid", True, None)
    assert {str(targets[t].goal_id) for t in unlinked} == {goal[1]}


def test_unknown_policy_is_refused_before_any_change(lossless_database: str) -> None:
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    before = _snapshot(lossless_database)
    with pytest.raises(UsageError, match="on_missing"):
        migrate.downgrade(PROJECT, lossless_database, BEFORE, x={"on_missing": "guess"})
    assert migrate.current(PROJECT, lossless_database) == (AFTER,)
    assert diff(before, _snapshot(lossless_database)).ok


def test_invariants_catch_violations(lossless_database: str) -> None:
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    with _engine(lossless_database) as engine, engine.begin() as conn:
        ids = conn.execute(
            sa.text(
                "SELECT (SELECT id::text FROM targets ORDER BY id LIMIT 1),"
                " (SELECT id::text FROM targets ORDER BY id DESC LIMIT 1),"
                " (SELECT id::text FROM commitments WHERE metadata ? 'legacy_goal_id'"
                "   ORDER BY id LIMIT 1),"
                " (SELECT id::text FROM commitments WHERE metadata ? 'legacy_sprint_id'"
                "   ORDER BY id DESC LIMIT 1),"
                " (SELECT id::text FROM sprints WHERE metadata ? 'legacy_goal_id'"
                "   ORDER BY id LIMIT 1),"
                " (SELECT id::text FROM commitments WHERE metadata ? 'owner' ORDER BY id LIMIT 1),"
                " (SELECT id::text FROM sprints WHERE metadata ? 'note' ORDER BY id LIMIT 1)"
            )
        ).one()
        mutations = (
            ("DELETE FROM target_goal_links WHERE target_id = CAST(:id AS uuid)", ids[0]),
            (
                "INSERT INTO target_sprint_links (target_id, sprint_id)"
                " SELECT CAST(:id AS uuid), s.id FROM sprints AS s"
                " WHERE s.id NOT IN (SELECT sprint_id FROM target_sprint_links"
                "   WHERE target_id = CAST(:id AS uuid)) LIMIT 1",
                ids[1],
            ),
            (
                "UPDATE commitments SET metadata = jsonb_set(metadata, '{legacy_goal_id}',"
                " to_jsonb(gen_random_uuid()::text)) WHERE id = CAST(:id AS uuid)",
                ids[2],
            ),
            (
                "UPDATE commitments SET metadata = metadata - 'legacy_sprint_id'"
                " WHERE id = CAST(:id AS uuid)",
                ids[3],
            ),
            (
                "UPDATE sprints SET metadata = metadata - 'legacy_goal_id'"
                " WHERE id = CAST(:id AS uuid)",
                ids[4],
            ),
            (
                'UPDATE commitments SET metadata = metadata || \'{"owner": "dev"}\''
                " WHERE id = CAST(:id AS uuid)",
                ids[5],
            ),
            (
                "UPDATE sprints SET metadata = metadata - 'note' WHERE id = CAST(:id AS uuid)",
                ids[6],
            ),
        )
        for sql, key in mutations:
            conn.execute(sa.text(sql), {"id": key})
        conn.execute(sa.text("ALTER TABLE sprints ADD COLUMN goal_id uuid"))
        found = {name: sorted(str(v) for v in rows) for name, rows in _violations(conn).items()}
    assert list(found.values()) == [[key] for key in ids] + [["sprints.goal_id"]]


# --- offline (--sql) ---------------------------------------------------------------------


def test_offline_upgrade_sql_has_the_designed_ddl() -> None:
    script = migrate.offline_sql(PROJECT, f"{BEFORE}:{AFTER}")
    for expected in (
        "ALTER TABLE target_goal_links ADD CONSTRAINT uq_target_goal UNIQUE (target_id, goal_id)",
        "ALTER TABLE target_sprint_links ADD CONSTRAINT uq_target_sprint"
        " UNIQUE (target_id, sprint_id)",
        "CREATE INDEX ix_target_goal_links_target_id ON target_goal_links (target_id)",
        "CREATE INDEX ix_target_goal_links_goal_id ON target_goal_links (goal_id)",
        "CREATE INDEX ix_target_sprint_links_target_id ON target_sprint_links (target_id)",
        "CREATE INDEX ix_target_sprint_links_sprint_id ON target_sprint_links (sprint_id)",
        "REFERENCES targets(id) ON DELETE CASCADE",
        "REFERENCES client_goals(id) ON DELETE CASCADE",
        "REFERENCES sprints(id) ON DELETE CASCADE",
        "'legacy_goal_id'",
        "'legacy_sprint_id'",
        "ALTER TABLE targets DROP COLUMN goal_id",
        "ALTER TABLE targets DROP COLUMN sprint_id",
        "ALTER TABLE commitments DROP COLUMN goal_id",
        "ALTER TABLE commitments DROP COLUMN sprint_id",
        "ALTER TABLE sprints DROP COLUMN goal_id",
        "UPDATE alembic_version SET version_num='f06135d685df'",
    ):
        assert expected in script, expected
    # the pre-refactor revision renders too, from nothing
    assert "CREATE TABLE commitment_target_links" in migrate.offline_sql(PROJECT, f":{BEFORE}")


def test_offline_downgrade_sql_restores_names_order_and_not_null() -> None:
    script = migrate.offline_sql(PROJECT, f"{AFTER}:{BEFORE}")
    for (table, name), definition in FIVE_FKS.items():
        assert f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}" in script
    for column, junction in LINKS.items():
        assert f"ALTER TABLE targets ALTER COLUMN {column} SET NOT NULL" in script
        assert "ORDER BY x.target_id, x.created_at, x.id" in script
        assert f"DROP TABLE {junction}" in script
        assert f"have no link in {junction}" in script  # the refusal guard
    # collapses first (the likeliest refusal), then the restores in reverse order of stashing
    order = [
        script.index(s)
        for s in (
            "DROP TABLE target_sprint_links",
            "DROP TABLE target_goal_links",
            "ALTER TABLE sprints ADD COLUMN goal_id",
            "ALTER TABLE commitments ADD COLUMN sprint_id",
            "ALTER TABLE commitments ADD COLUMN goal_id",
        )
    ]
    assert order == sorted(order)


def _run_script(url: str, script: str) -> None:
    with connect(url) as conn:
        conn.execute(script.encode())


def test_offline_scripts_do_what_the_online_run_does(lossless_database: str) -> None:
    _seeded(lossless_database)
    s0 = _snapshot(lossless_database)
    _run_script(lossless_database, migrate.offline_sql(PROJECT, f"{BEFORE}:{AFTER}"))
    assert migrate.current(PROJECT, lossless_database) == (AFTER,)
    with _engine(lossless_database) as engine, engine.connect() as conn:
        assert {n: rows for n, rows in _violations(conn).items() if rows} == {}
    _run_script(lossless_database, migrate.offline_sql(PROJECT, f"{AFTER}:{BEFORE}"))
    assert migrate.current(PROJECT, lossless_database) == (BEFORE,)
    found = diff(s0, _snapshot(lossless_database))
    assert found.ok and found.differences == ()
    assert all(n.startswith("column order of ") for n in found.notices)


def test_offline_refusal_guard_raises_in_the_database(lossless_database: str) -> None:
    _seeded(lossless_database, rows=40)
    migrate.upgrade(PROJECT, lossless_database, AFTER)
    _unlink(lossless_database, "target_goal_links", 1)
    before = _snapshot(lossless_database)
    with pytest.raises(psycopg.errors.CheckViolation, match=r"refused: targets\.goal_id: 1 row"):
        _run_script(lossless_database, migrate.offline_sql(PROJECT, f"{AFTER}:{BEFORE}"))
    assert diff(before, _snapshot(lossless_database)).ok


# --- the round-trip engine ---------------------------------------------------------------


def _step(report: RoundTripReport, name: str) -> dict[str, Any]:
    steps: dict[str, dict[str, Any]] = {s["name"]: s for s in report.to_json()["steps"]}
    return steps[name]


def test_scenario_round_trip_passes(
    lossless_server: Server, journey: Journey, reshaped: Reshaped
) -> None:
    report = run_scenario_roundtrip(SCENARIO, lossless_server.url, rows=ROWS, seed=SEED)
    assert report.ok, report.render()
    stashed = sum(
        getattr(row, column) is not None
        for table, columns in (("commitments", ("goal_id", "sprint_id")), ("sprints", ("goal_id",)))
        for row in journey.before[table].values()
        for column in columns
    )
    upgrade = _step(report, "upgrade")
    assert (upgrade["counts"]["moved"], upgrade["counts"]["stashed"]) == (2 * ROWS, stashed)
    assert [i["violations"] for i in upgrade["invariants"]] == [0] * len(SCENARIO.invariants)
    downgrade = _step(report, "downgrade")
    assert downgrade["counts"]["collapsed"] == 2 * ROWS
    assert downgrade["counts"]["restored"] == stashed
    assert downgrade["counts"]["lost"] == 0
    new_shape = _step(report, "new shape")
    found = {loss["table"]: (loss["expected"], loss["found"]) for loss in new_shape["losses"]}
    extra = {LINKS[c]: len(reshaped.links[c]) - ROWS for c in LINKS}  # counted in this file
    assert found == {junction: (n, n) for junction, n in extra.items()}


@pytest.mark.slow
def test_round_trip_at_100k_targets(lossless_server: Server) -> None:
    rows = 100_000
    report = run_scenario_roundtrip(SCENARIO, lossless_server.url, rows=rows, seed=SEED)
    assert report.ok, report.render()
    assert _step(report, "upgrade")["counts"]["moved"] == 2 * rows
    assert _step(report, "downgrade")["counts"]["collapsed"] == 2 * rows
    losses = _step(report, "new shape")["losses"]
    assert len(losses) == 2 and all(loss["found"] == loss["expected"] > 0 for loss in losses)
