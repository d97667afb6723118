"""seed, snapshot, diff and roundtrip, run as subprocesses and checked on the database."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Connection, func, inspect, select, table, text

from tests.cli.conftest import (
    SCENARIO,
    Lossless,
    MigrateTo,
    assert_one_error,
    engine_on,
    run_lossless,
)
from tests.cli.project import LOSSY_REVISIONS, write_project
from toolkit.bundled import get_scenario


def _counts(conn: Connection) -> dict[str, int]:
    names = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
    return {n: conn.execute(select(func.count()).select_from(table(n))).scalar_one() for n in names}


def test_seed_a_scenario_on_an_empty_database(lossless_database: str, conn: Connection) -> None:
    before = get_scenario(SCENARIO).before

    outcome = run_lossless(
        "-s", SCENARIO, "--url", lossless_database, "seed", "--rows", "30", "--json"
    )

    assert outcome.code == 0, outcome
    report = json.loads(outcome.out)
    counts = _counts(conn)
    assert report["tables"] == counts
    assert report["total"] == sum(counts.values())
    assert counts["targets"] == 30
    assert report["current"] == [before] and report["prepared"] == before
    assert report["rows_per_second"] > 0
    assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == before

    again = run_lossless(
        "-s", SCENARIO, "--url", lossless_database, "seed", "--rows", "30", "--seed", "7"
    )
    assert again.code == 0, again
    assert "rows/s" in again.out and "targets" in again.out
    assert _counts(conn)["targets"] == 60


def test_seed_refuses_a_database_past_the_scenarios_start(
    lossless_database: str, conn: Connection
) -> None:
    scenario = get_scenario(SCENARIO)
    conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
    conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": scenario.after})

    outcome = run_lossless("-s", SCENARIO, "--url", lossless_database, "seed", "--rows", "5")

    assert_one_error(outcome, 2, f"seeds the schema of revision {scenario.before}")
    assert inspect(conn).get_table_names() == ["alembic_version"]


def test_seed_a_project_by_reflection(lossless: Lossless, conn: Connection) -> None:
    outcome = lossless("seed", "--rows", "12", "--json")

    assert outcome.code == 0, outcome
    report = json.loads(outcome.out)
    assert report["prepared"] == "d4"  # the empty database was brought to the head first
    counts = _counts(conn)
    # Rows added by the seeder: d4 had written one row of its own.
    assert report["tables"] == {**counts, "migration_session": counts["migration_session"] - 1}
    assert report["tables"]["accounts"] == 12
    assert report["tables"]["contacts"] > 0


def test_snapshot_and_diff(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection, tmp_path: Path
) -> None:
    migrate_to("a1")
    conn.execute(
        text("INSERT INTO accounts (email) VALUES ('ada@example.org'), ('bob@example.org')")
    )
    migrate_to("heads")
    first, second = tmp_path / "first.json", tmp_path / "second.json"

    taken = lossless("snapshot", "-o", str(first))
    assert taken.code == 0, taken
    assert "3 tables, 5 rows" in taken.out  # alembic_version is not data
    data = json.loads(first.read_text())
    assert data["tables"]["accounts"]["rows"] == 2
    assert data["tables"]["contacts"]["rows"] == 2

    conn.execute(text("UPDATE contacts SET email = 'bob@work.example' WHERE account_id = 2"))
    assert lossless("snapshot", "-o", str(second)).code == 0

    same = run_lossless("diff", str(first), str(first))
    assert (same.code, same.out.strip()) == (0, "no differences")
    changed = run_lossless("diff", str(second), str(first), "--json")
    assert changed.code == 1, changed
    found = json.loads(changed.out)
    assert found["ok"] is False
    assert {d.get("table") for d in found["differences"]} == {"contacts"}

    not_a_snapshot = tmp_path / "other.json"
    not_a_snapshot.write_text('{"hello": 1}')
    assert_one_error(
        run_lossless("diff", str(first), str(not_a_snapshot)), 2, "not a lossless snapshot"
    )


def test_roundtrip_of_a_project_fails_on_an_undeclared_change(
    tmp_path: Path, lossless_database: str, conn: Connection
) -> None:
    lossy = write_project(tmp_path / "lossy", revisions=LOSSY_REVISIONS)
    caught = run_lossless(
        "-c", str(lossy), "--url", lossless_database, "roundtrip", "--rows", "5", "--json"
    )
    assert caught.code == 1, caught
    report = json.loads(caught.out)
    assert report["ok"] is False
    assert any("e5" in problem and "accounts" in problem for problem in report["problems"])
    assert inspect(conn).get_table_names() == []


def test_roundtrip_works_on_a_scratch_copy(lossless_database: str, conn: Connection) -> None:
    outcome = run_lossless(
        "-s", SCENARIO, "--url", lossless_database, "roundtrip", "--rows", "20", "--json"
    )

    assert outcome.code == 0, outcome
    assert json.loads(outcome.out)["ok"] is True
    assert "is not changed" in outcome.err
    # The database the URL names is left exactly as it was: empty.
    assert inspect(conn).get_table_names() == []


def test_roundtrip_on_a_clone_of_the_named_database(seeded_database: str) -> None:
    with engine_on(seeded_database) as engine, engine.connect() as conn:
        before = _counts(conn)
    # No session may stay on a template database: the check above is closed again.

    outcome = run_lossless(
        "-s", SCENARIO, "--url", seeded_database, "roundtrip", "--clone", "--rows", "0", "--json"
    )

    assert outcome.code == 0, outcome
    report = json.loads(outcome.out)
    assert (report["ok"], report["rows"]) == (True, 0)
    assert "starting from a copy of" in outcome.err
    with engine_on(seeded_database) as engine, engine.connect() as conn:
        assert _counts(conn) == before
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == get_scenario(SCENARIO).before
