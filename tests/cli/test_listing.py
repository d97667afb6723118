"""Commands that need no database: scenarios, history, sql; and usage errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.cli.conftest import assert_one_error, run_lossless
from toolkit.bundled import all_scenarios

#: Nothing listens on port 1: a command that needs no database must not try to connect.
UNREACHABLE = "postgresql://dba:N0t-Used-Pw@127.0.0.1:1/nowhere"


def test_scenarios_lists_every_bundled_scenario() -> None:
    machine = run_lossless("scenarios", "--json")
    assert machine.code == 0, machine
    expected = [
        {"name": s.name, "before": s.before, "after": s.after, "description": s.description}
        for s in all_scenarios().values()
    ]
    assert json.loads(machine.out) == {"format": "lossless.scenarios/1", "scenarios": expected}
    by_name = {s["name"]: s for s in expected}
    assert by_name["migration-014"]["after"] == "f06135d685df"
    assert "iteration-decoupling" in by_name

    # The installed console script is the same CLI.
    person = run_lossless("scenarios", command=(str(Path(sys.executable).parent / "lossless"),))
    assert person.code == 0, person
    rows = {line.split()[0]: line.split()[1:3] for line in person.out.splitlines()[2:4]}
    assert rows == {s["name"]: [s["before"], s["after"]] for s in expected}
    assert person.err == ""  # no server was started for a listing


def test_history_lists_revisions_base_first(project: Path) -> None:
    person = run_lossless("-c", str(project), "--url", UNREACHABLE, "history")
    assert person.code == 0, person
    lines = person.out.splitlines()[2:]
    assert [line.split()[:2] for line in lines] == [
        ["a1", "base"],
        ["b2", "a1"],
        ["c3", "b2"],
        ["d4", "c3"],
    ]
    assert lines[-1].endswith("(head)")

    machine = json.loads(run_lossless("-c", str(project), "history", "--json").out)["revisions"]
    assert [(r["revision"], r["down_revision"], r["head"]) for r in machine] == [
        ("a1", [], False),
        ("b2", ["a1"], False),
        ("c3", ["b2"], False),
        ("d4", ["c3"], True),
    ]
    assert machine[1]["message"] == "contacts: one per account"


def test_history_marks_a_scenarios_before_and_after() -> None:
    scenario = all_scenarios()["migration-014"]
    machine = json.loads(run_lossless("-s", scenario.name, "history", "--json").out)["revisions"]
    labels = {r["revision"]: r["label"] for r in machine}
    assert labels[scenario.before] == "before"
    assert labels[scenario.after] == "after"


def test_sql_renders_both_directions_without_a_database(project: Path) -> None:
    up = run_lossless("-c", str(project), "--url", UNREACHABLE, "sql", "base:head")
    assert up.code == 0, up
    assert "CREATE TABLE accounts" in up.out
    assert (
        "INSERT INTO contacts (account_id, email) SELECT id, email FROM accounts ORDER BY id"
        in up.out
    )
    assert "ALTER TABLE accounts ADD CONSTRAINT uq_accounts_email UNIQUE (email)" in up.out
    assert (
        "UPDATE alembic_version SET version_num='d4' WHERE alembic_version.version_num = 'c3'"
        in (up.out)
    )

    down = run_lossless("-c", str(project), "sql", "d4:b2")
    assert down.code == 0, down
    assert "ALTER TABLE accounts DROP CONSTRAINT uq_accounts_email" in down.out
    assert "DROP TABLE migration_session" in down.out
    assert "DROP TABLE contacts" not in down.out


def test_usage_errors_are_one_line_with_exit_code_2(project: Path) -> None:
    assert_one_error(run_lossless("-s", "no-such-scenario", "history"), 2, "unknown scenario")
    assert_one_error(run_lossless("history"), 2, "give --scenario NAME")
    assert_one_error(run_lossless("-c", str(project), "sql", "head"), 2, "expected FROM:TO")
    assert_one_error(run_lossless("-c", "missing/alembic.ini", "history"), 2, "no such Alembic")
    assert_one_error(
        run_lossless("--lock-timeout", "soon", "-c", str(project), "history"),
        2,
        "'soon' is not a duration",
    )
    for malformed in ("on_missing", "=keep_null"):
        assert_one_error(
            run_lossless("-c", str(project), "sql", "d4:a1", "-x", malformed),
            2,
            f"Invalid value for '-x': '{malformed}' is not NAME=VALUE",
        )
