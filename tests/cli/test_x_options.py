"""``-x NAME=VALUE``: the options a revision reads, through downgrade, preflight and sql.

migration-014's downgrade reads ``-x on_missing=refuse|keep_null|fill`` (``fill_goal_id``,
``fill_sprint_id``) for targets that have no link to take their NOT NULL column back from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, inspect, text

from tests.cli.conftest import (
    SCENARIO,
    SEEDED_TARGETS,
    assert_one_error,
    engine_on,
    revision_of,
    run_lossless,
)
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.migrate import Project
from toolkit.verify import Snapshot, diff, take_snapshot

SCENARIO_014 = get_scenario(SCENARIO)
BEFORE, AFTER = SCENARIO_014.before, SCENARIO_014.after


@dataclass(frozen=True)
class Unlinked:
    """A migration-014 database after the upgrade where one target lost its goal link."""

    url: str
    target: str
    #: Every other target's goal, as its one link said before the downgrade.
    goals: dict[str, str]


def _state(conn: Connection) -> tuple[list[str], Snapshot]:
    return revision_of(conn), take_snapshot(conn)


def _assert_unchanged(conn: Connection, before: tuple[list[str], Snapshot]) -> None:
    revision, snapshot = _state(conn)
    assert revision == before[0]
    found = diff(before[1], snapshot)
    assert found.ok, found.render()


@pytest.fixture
def unlinked(seeded_database: str) -> Iterator[tuple[Unlinked, Connection]]:
    migrate.upgrade(Project.for_scenario(SCENARIO_014), seeded_database, AFTER)
    with engine_on(seeded_database) as engine, engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        target = conn.execute(
            text(
                "DELETE FROM target_goal_links WHERE target_id = (SELECT target_id "
                "FROM target_goal_links ORDER BY target_id LIMIT 1) RETURNING target_id::text"
            )
        ).scalar_one()
        goals: dict[str, str] = dict(
            conn.execute(text("SELECT target_id::text, goal_id::text FROM target_goal_links")).all()
        )
        assert len(goals) == SEEDED_TARGETS - 1
        yield Unlinked(seeded_database, target, goals), conn


def test_downgrade_refuses_then_keep_null_proceeds(unlinked: tuple[Unlinked, Connection]) -> None:
    db, conn = unlinked
    args = ("-s", SCENARIO, "--url", db.url)
    before = _state(conn)

    refused = run_lossless(*args, "downgrade", BEFORE)

    line = assert_one_error(
        refused,
        1,
        "refused: targets.goal_id: 1 row(s) have no link in target_goal_links",
        f"(e.g. {db.target})",
        f"revision {AFTER} reads this policy from -x: rerun with -x on_missing=keep_null",
        "-x on_missing=fill -x fill_goal_id=ID",
    )
    assert "fill_value" not in line  # the operation's own argument means nothing here
    assert f"the database is at {AFTER}" in refused.err
    _assert_unchanged(conn, before)

    preview = run_lossless(*args, "preflight", BEFORE, "-x", "on_missing=keep_null")

    assert preview.code == 0, preview
    assert f"{AFTER} -> {BEFORE} with -x on_missing=keep_null in" in preview.out
    rows = [line.split() for line in preview.out.splitlines()]
    collapsed = {row[0]: row[5] for row in rows if row[1:2] == ["collapse_junction_to_fk"]}
    assert collapsed == {
        "target_goal_links.goal_id": str(SEEDED_TARGETS - 1),
        "target_sprint_links.sprint_id": str(SEEDED_TARGETS),
    }
    assert "note: target_goal_links.goal_id (collapse_junction_to_fk): 1 row(s)" in preview.out
    assert "targets.goal_id left nullable (on_missing='keep_null')" in preview.out
    assert preview.out.strip().endswith(f"verdict: ok: would reach {BEFORE} and lose nothing")
    _assert_unchanged(conn, before)

    done = run_lossless(*args, "downgrade", BEFORE, "-x", "on_missing=keep_null", "--json")

    assert done.code == 0, done
    report = json.loads(done.out)
    assert (report["x"], report["before"], report["after"]) == (
        {"on_missing": "keep_null"},
        [AFTER],
        [BEFORE],
    )
    assert revision_of(conn) == [BEFORE]
    restored: dict[str, str | None] = dict(
        conn.execute(text("SELECT id::text, goal_id::text FROM targets")).all()
    )
    assert restored == {**db.goals, db.target: None}
    nullable = {c["name"]: c["nullable"] for c in inspect(conn).get_columns("targets")}
    assert (nullable["goal_id"], nullable["sprint_id"]) == (True, False)
    fk = conn.execute(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'targets_goal_id_fkey'"
        )
    ).scalar_one()
    assert fk == "FOREIGN KEY (goal_id) REFERENCES client_goals(id)"


def test_sql_renders_with_x_options() -> None:
    span = f"{AFTER}:{BEFORE}"
    refusing = run_lossless("-s", SCENARIO, "sql", span)
    keeping = run_lossless(
        "-s", SCENARIO, "sql", span, "-x", "on_missing=keep_null", "-x", "keep_extra_link=true"
    )

    assert (refusing.code, refusing.err) == (0, "")
    assert "'refused: targets.goal_id: '" in refusing.out
    assert "lossless: targets.goal_id left nullable" not in refusing.out
    assert keeping.code == 0, keeping
    assert "'refused: targets.goal_id: '" not in keeping.out
    assert "lossless: targets.goal_id left nullable" in keeping.out
    # A misspelt option (the revision reads keep_extra_links) is said, not silently ignored.
    assert keeping.err.strip() == (
        f"warning: no revision of {SCENARIO} reads -x keep_extra_link: it has no effect (misspelt?)"
    )
