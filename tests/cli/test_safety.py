"""Passwords never printed, connection errors in one line, the throwaway server said plainly."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url

from tests.cli.conftest import Outcome, assert_one_error, run_lossless
from tests.cli.project import CHATTY_ENV_PY, write_project

PASSWORD = "Sup3r%Secret-pw"


def _with_password(url: str, *, port: int | None = None, database: str | None = None) -> str:
    parsed = make_url(url).set(password=PASSWORD)
    if port is not None:
        parsed = parsed.set(port=port)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _assert_no_password(outcome: Outcome) -> None:
    for secret in (PASSWORD, PASSWORD.replace("%", "%25")):
        assert secret not in outcome.out, outcome
        assert secret not in outcome.err, outcome


def test_a_password_is_never_printed(
    project: Path, lossless_database: str, conn: Connection
) -> None:
    # The test servers trust local connections: the password is sent, and accepted.
    url = _with_password(lossless_database)
    runs = [
        run_lossless("-c", str(project), "--url", url, "preflight"),
        run_lossless("-c", str(project), "--url", url, "upgrade", "b2"),
        run_lossless("-c", str(project), "current", "--json", env={"LOSSLESS_URL": url}),
    ]
    for outcome in runs:
        assert outcome.code == 0, outcome
        _assert_no_password(outcome)
    assert "postgresql://postgres:***@" in runs[1].err
    assert json.loads(runs[2].out)["current"] == ["b2"]
    assert sorted(inspect(conn).get_table_names()) == ["accounts", "alembic_version", "contacts"]


def test_log_lines_of_a_teams_env_py_lose_the_password(
    tmp_path: Path, lossless_database: str
) -> None:
    ini = write_project(tmp_path / "chatty", env_py=CHATTY_ENV_PY)

    outcome = run_lossless("-c", str(ini), "--url", _with_password(lossless_database), "upgrade")

    assert outcome.code == 0, outcome
    assert "migrating postgresql+psycopg://postgres:***@" in outcome.err
    _assert_no_password(outcome)


def test_unreachable_server_and_missing_database(project: Path, lossless_database: str) -> None:
    unreachable = run_lossless(
        "-c", str(project), "--url", _with_password(lossless_database, port=1), "upgrade"
    )
    line = assert_one_error(unreachable, 2, "cannot connect to", ":***@")
    assert "Connection refused" in line or "connection failed" in line
    _assert_no_password(unreachable)

    missing = run_lossless(
        "-c",
        str(project),
        "--url",
        _with_password(lossless_database, database="no_such_db"),
        "current",
    )
    assert_one_error(missing, 2, "cannot connect to", '"no_such_db" does not exist')
    _assert_no_password(missing)

    malformed = run_lossless(
        "-c", str(project), "--url", f"mysql://root:{PASSWORD}@db/x", "current"
    )
    assert_one_error(malformed, 2, "not a PostgreSQL URL")
    _assert_no_password(malformed)


def test_without_url_the_throwaway_server_is_announced(project: Path) -> None:
    # Pointless (the server is deleted a moment later) but it must work, and say so.
    outcome = run_lossless("-c", str(project), "upgrade", "--json")
    assert outcome.code == 0, outcome
    assert "throwaway embedded server" in outcome.err
    assert "deleted when the command ends" in outcome.err
    report = json.loads(outcome.out)
    assert (report["database"], report["before"], report["after"]) == ("postgres", [], ["d4"])


def test_server_choice_errors(project: Path, lossless_database: str) -> None:
    assert_one_error(
        run_lossless(
            "-c", str(project), "--url", lossless_database, "--postgres", "docker", "current"
        ),
        2,
        "either --url (LOSSLESS_URL) or --postgres",
    )
    assert_one_error(
        run_lossless("-c", str(project), "--postgres", "podman", "current"),
        2,
        "unknown --postgres value 'podman'",
    )
