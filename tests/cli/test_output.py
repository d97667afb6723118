"""Quiet and machine-readable output: -q, --json documents, a project's own output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from tests.cli.conftest import Lossless, MigrateTo, Outcome, revision_of, run_lossless
from tests.cli.project import PRINTING_ENV_PY, STDOUT_LOGGING_INI, write_project

ALEMBIC_INFO = "INFO  [alembic.runtime.migration] Running upgrade a1 -> b2"


def _document(outcome: Outcome) -> dict[str, Any]:
    """Stdout holds exactly one JSON object."""
    data = json.loads(outcome.out)
    assert isinstance(data, dict), outcome
    return data


@pytest.fixture
def printing_project(tmp_path: Path) -> Path:
    """A project whose env.py prints and whose logging config writes INFO lines to stdout."""
    return write_project(
        tmp_path / "printing", env_py=PRINTING_ENV_PY, ini_extra=STDOUT_LOGGING_INI
    )


def test_json_stays_clean_when_the_project_prints_and_logs_to_stdout(
    printing_project: Path, lossless_database: str, conn: Connection
) -> None:
    outcome = run_lossless(
        "-c", str(printing_project), "--url", lossless_database, "upgrade", "--json"
    )

    assert outcome.code == 0, outcome
    assert _document(outcome)["after"] == ["d4"]
    # The project's own output is not lost: it went to stderr.
    assert "env.py says hello" in outcome.err
    assert ALEMBIC_INFO in outcome.err
    assert revision_of(conn) == ["d4"]


def test_json_stays_clean_when_the_workers_of_a_round_trip_print(
    printing_project: Path, lossless_database: str
) -> None:
    args = ("-c", str(printing_project), "--url", lossless_database, "roundtrip", "--rows", "5")
    alone = run_lossless(*args, "--jobs", "1", "--json")
    shared = run_lossless(*args, "--jobs", "2", "--json")

    steps = [(s["name"], s["status"]) for s in _document(shared)["steps"]]
    assert steps == [(s["name"], s["status"]) for s in _document(alone)["steps"]]
    assert [name for name, _ in steps] == ["a1", "b2", "c3", "d4"]
    assert shared.code == alone.code, (shared, alone)
    # Every worker ran the project's env.py, whose output went to stderr.
    assert "env.py says hello" in shared.err
    assert ALEMBIC_INFO in shared.err


def test_sql_output_is_only_sql_when_the_project_prints(printing_project: Path) -> None:
    outcome = run_lossless("-c", str(printing_project), "sql", ":b2")

    assert outcome.code == 0, outcome
    assert "env.py says hello" not in outcome.out
    assert "INFO" not in outcome.out
    assert "CREATE TABLE contacts" in outcome.out
    assert "env.py says hello" in outcome.err


def test_quiet_silences_the_project_s_alembic_info_lines(
    printing_project: Path, lossless_database: str, conn: Connection
) -> None:
    args = ("-c", str(printing_project), "--url", lossless_database)
    loud = run_lossless(*args, "upgrade", "b2")
    conn.execute(text("DROP TABLE contacts, accounts, alembic_version"))
    quiet = run_lossless(*args, "-q", "upgrade", "b2")

    assert loud.code == 0 and quiet.code == 0, (loud, quiet)
    assert ALEMBIC_INFO in loud.err  # the project does log them
    assert "INFO" not in quiet.err + quiet.out, quiet
    assert "[    " not in quiet.err  # nor progress lines
    assert revision_of(conn) == ["b2"]


def test_every_json_document_carries_its_format(
    lossless: Lossless, migrate_to: MigrateTo, project: Path, tmp_path: Path
) -> None:
    migrate_to("b2")
    snapshot = tmp_path / "snap.json"
    assert lossless("snapshot", "-o", str(snapshot)).code == 0
    documents = {
        "scenarios": run_lossless("scenarios", "--json"),
        "history": run_lossless("-c", str(project), "history", "--json"),
        "current": lossless("current", "--json"),
        "preflight": lossless("preflight", "c3", "--json"),
        "upgrade": lossless("upgrade", "c3", "--json"),
        "downgrade": lossless("downgrade", "b2", "--json"),
        "seed": lossless("seed", "--rows", "3", "--json"),
        "diff": run_lossless("diff", str(snapshot), str(snapshot), "--json"),
        "roundtrip": lossless("roundtrip", "--rows", "3", "--json"),
    }

    for command, outcome in documents.items():
        assert outcome.code == 0, (command, outcome)
        assert _document(outcome)["format"] == f"lossless.{command}/1", command
    # One vocabulary: where the database was and where it got to.
    for command in ("preflight", "upgrade", "downgrade"):
        doc = _document(documents[command])
        assert {"before", "after", "direction", "revision", "server"} <= doc.keys(), command
    assert _document(documents["preflight"])["after"] == ["c3"]
    assert _document(documents["upgrade"])["after"] == ["c3"]
    assert _document(documents["downgrade"])["after"] == ["b2"]
    assert _document(documents["current"])["current"] == ["b2"]
    assert _document(documents["seed"])["current"] == ["b2"]
    assert [r["revision"] for r in _document(documents["history"])["revisions"]] == [
        "a1",
        "b2",
        "c3",
        "d4",
    ]


def test_server_is_structured(lossless: Lossless, lossless_database: str) -> None:
    server = _document(lossless("current", "--json"))["server"]

    assert server["kind"] == "url"
    assert server["version"].split(".")[0].isdigit()
    assert server["database"] == lossless_database.rsplit("/", 1)[1]
    assert server["url"].endswith(lossless_database.rsplit("@", 1)[-1])


@pytest.mark.parametrize(
    ("args", "kind", "code", "fragment"),
    [
        (("upgrade", "zz", "--json"), "usage", 2, "unknown revision 'zz'"),
        (("upgrade", "--bogus", "--json"), "usage", 2, "--bogus"),
        (("upgrade", "b2", "--json"), "refused", 1, "have an empty email"),
        (("upgrade", "--json"), "migration_failed", 1, "upgrade b2 -> c3 failed"),
    ],
)
def test_a_failure_with_json_prints_one_error_document(
    lossless: Lossless,
    migrate_to: MigrateTo,
    conn: Connection,
    args: tuple[str, ...],
    kind: str,
    code: int,
    fragment: str,
) -> None:
    migrate_to("a1")
    conn.execute(text("INSERT INTO accounts (email) VALUES ('a'), ('a'), ('')"))
    if kind == "migration_failed":
        conn.execute(text("DELETE FROM accounts WHERE email = ''"))

    outcome = lossless(*args)

    assert outcome.code == code, outcome
    doc = _document(outcome)
    assert doc["format"] == "lossless.error/1"
    assert doc["error"]["kind"] == kind
    assert doc["error"]["exit_code"] == code
    assert fragment in doc["error"]["message"]
    # A person reading stderr still gets the one line.
    assert len(outcome.errors) == 1 and fragment in outcome.errors[0], outcome


def test_a_bad_url_with_json_prints_one_error_document(project: Path) -> None:
    outcome = run_lossless(
        "-c", str(project), "--url", "postgresql://dba:pw@db1:port/app", "current", "--json"
    )

    assert outcome.code == 2, outcome
    error = _document(outcome)["error"]
    assert error == {"kind": "usage", "message": error["message"], "exit_code": 2}
    assert "'port' is not a number" in error["message"]


def test_top_level_help_lists_every_exit_code() -> None:
    outcome = run_lossless("--help")

    assert outcome.code == 0, outcome
    epilog = " ".join(outcome.out.split()[outcome.out.split().index("Exit") :])
    for code in ("0 ok", "1 data", "2 usage", "130 interrupted"):
        assert code in epilog, epilog
