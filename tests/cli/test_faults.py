"""Bad input and faults: one line on stderr, the right exit code, no traceback, no secret."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, Connection, text

from tests.cli.conftest import (
    Lossless,
    MigrateTo,
    Outcome,
    assert_one_error,
    engine_on,
    revision_of,
    run_lossless,
    start_lossless,
)
from tests.cli.project import SLOW_COMMIT_REVISIONS, SLOW_REVISIONS, write_project
from toolkit import migrate
from toolkit.migrate import Project
from toolkit.postgres import Server
from toolkit.postgres.url import database_name, parse_url, with_database

SECRET = "s3cr3t-pw"


def _no_traceback(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.err, outcome
    assert "sqlalche.me" not in outcome.err, outcome
    assert SECRET not in outcome.err + outcome.out, outcome


# URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["current", "history", "upgrade"])
def test_a_non_numeric_port_is_one_usage_line(project: Path, command: str) -> None:
    url = f"postgresql://dba:{SECRET}@db1:5x432/app"
    given = run_lossless("-c", str(project), "--url", url, command)
    from_env = run_lossless("-c", str(project), command, env={"LOSSLESS_URL": url})

    for outcome in (given, from_env):
        line = assert_one_error(outcome, 2, "port", "'5x432'", "is not a number")
        assert "unexpected" not in line
        _no_traceback(outcome)


def test_a_url_naming_nothing_is_refused(project: Path) -> None:
    outcome = run_lossless("-c", str(project), "--url", "postgresql://", "current")

    assert_one_error(outcome, 2, "postgresql://", "names no server and no database")


@pytest.fixture
def role_with_database(lossless_server: Server) -> Iterator[str]:
    """A login role with a database of its own name: libpq's default database for it."""
    name = f"lossless_role_{int(time.time() * 1000) % 10**9}"
    with engine_on(lossless_server.url) as engine:
        with engine.connect() as admin:
            admin = admin.execution_options(isolation_level="AUTOCOMMIT")
            admin.execute(text(f'CREATE ROLE "{name}" LOGIN SUPERUSER'))
            admin.execute(text(f'CREATE DATABASE "{name}" OWNER "{name}"'))
        try:
            yield name
        finally:
            with engine.connect() as admin:
                admin = admin.execution_options(isolation_level="AUTOCOMMIT")
                admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.execute(text(f'DROP ROLE IF EXISTS "{name}"'))


def test_a_url_without_a_database_names_the_one_libpq_uses(
    project: Path, lossless_server: Server, role_with_database: str
) -> None:
    # The server's URL, logged in as the role, with no database: libpq connects to the
    # database named after the user, and so must every line lossless prints.
    server = parse_url(lossless_server.url)
    url = URL.create(
        "postgresql",
        username=role_with_database,
        password=server.password,
        host=server.host,
        port=server.port,
    ).render_as_string(hide_password=False)
    assert database_name(url) == role_with_database

    outcome = run_lossless("-c", str(project), "--url", url, "upgrade", "a1")

    assert outcome.code == 0, outcome
    assert f"on database {role_with_database!r}" in outcome.out
    role_url = with_database(lossless_server.url, role_with_database)
    with engine_on(role_url) as engine, engine.connect() as conn:
        assert revision_of(conn) == ["a1"]


# Arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "fragments"),
    [
        (":", ("FROM:TO", "no TO")),
        ("a1:", ("FROM:TO", "no TO")),
        ("a1:a1", ("a1:a1", "same revision")),
        ("base:base", ("base:base", "same revision")),
    ],
)
def test_sql_spans_that_show_nothing_are_usage_errors(
    project: Path, span: str, fragments: tuple[str, ...]
) -> None:
    outcome = run_lossless("-c", str(project), "sql", span)

    assert_one_error(outcome, 2, *fragments)
    assert outcome.out == ""
    _no_traceback(outcome)


@pytest.mark.parametrize("option", ["--statement-timeout", "--lock-timeout"])
def test_a_timeout_beyond_postgresql_s_limit_is_a_usage_error(
    lossless: Lossless, option: str, conn: Connection
) -> None:
    outcome = lossless(option, "1000000000h", "upgrade")

    line = assert_one_error(outcome, 2, option, "1000000000h", "24.8 days")
    assert "connect" not in line
    assert revision_of(conn) == []


def test_upgrade_below_and_downgrade_above_both_say_which_command_to_use(
    lossless: Lossless, migrate_to: MigrateTo, conn: Connection
) -> None:
    migrate_to("c3")

    below = lossless("upgrade", "a1")
    above = lossless("downgrade", "d4")
    base = lossless("upgrade", "base")

    assert_one_error(below, 2, "a1 is below", "(c3)", "`lossless downgrade a1`")
    assert_one_error(base, 2, "base is below", "(c3)", "`lossless downgrade base`")
    assert_one_error(above, 2, "d4 is not below", "(c3)", "`lossless upgrade d4`")
    assert revision_of(conn) == ["c3"]
    # Where the database already is: nothing to do, both ways.
    assert lossless("upgrade", "c3").code == 0
    assert lossless("downgrade", "c3").code == 0
    assert revision_of(conn) == ["c3"]


# Faults while a revision runs ------------------------------------------------------------


def _wait_for_query(conn: Connection, fragment: str, *, seconds: float = 60) -> int:
    """The pid of the ``lossless upgrade`` session running a query containing ``fragment``."""
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'lossless upgrade' AND state = 'active' "
        "AND position(:fragment in query) > 0"
    )
    deadline = time.monotonic() + seconds
    while (pid := conn.execute(query, {"fragment": fragment}).scalar()) is None:
        assert time.monotonic() < deadline, f"no lossless session ran {fragment!r}"
        time.sleep(0.05)
    return int(pid)


def _finish(process: subprocess.Popen[str]) -> Outcome:
    out, err = process.communicate(timeout=120)
    return Outcome(process.returncode, out, err)


def _slow_project(
    tmp_path: Path, url: str, revisions: dict[str, tuple[str, str | None, str]]
) -> Path:
    ini = write_project(tmp_path / "slow", revisions=revisions)
    migrate.upgrade(Project.from_ini(ini), url, "a1")
    return ini


def test_a_session_killed_mid_revision_says_it_did_not_commit(
    tmp_path: Path, lossless_database: str, conn: Connection
) -> None:
    ini = _slow_project(tmp_path, lossless_database, SLOW_REVISIONS)
    process = start_lossless("-c", str(ini), "--url", lossless_database, "upgrade")
    pid = _wait_for_query(conn, "pg_sleep")
    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    outcome = _finish(process)

    assert_one_error(
        outcome,
        2,
        "connection lost during revision s2 (upgrade a1 -> s2)",
        "its transaction had not been committed",
        "the database is at a1 (it did not commit)",
        "check with `lossless current`",
    )
    _no_traceback(outcome)
    assert revision_of(conn) == ["a1"]


def test_a_session_killed_while_committing_says_it_may_have_committed(
    tmp_path: Path, lossless_database: str, conn: Connection
) -> None:
    ini = _slow_project(tmp_path, lossless_database, SLOW_COMMIT_REVISIONS)
    process = start_lossless("-c", str(ini), "--url", lossless_database, "upgrade")
    pid = _wait_for_query(conn, "COMMIT")
    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    outcome = _finish(process)

    assert_one_error(
        outcome,
        2,
        "connection lost while committing revision g2 (upgrade a1 -> g2)",
        "it may have committed",
        "the database is at a1 (it did not commit)",
        "check with `lossless current`",
    )
    _no_traceback(outcome)
    assert revision_of(conn) == ["a1"]


def test_a_server_gone_while_committing_says_to_check(
    tmp_path: Path, lossless_database: str, lossless_server: Server, conn: Connection
) -> None:
    ini = _slow_project(tmp_path, lossless_database, SLOW_COMMIT_REVISIONS)
    name = database_name(lossless_database)
    process = start_lossless("-c", str(ini), "--url", lossless_database, "upgrade")
    pid = _wait_for_query(conn, "COMMIT")
    with engine_on(lossless_server.url) as engine, engine.connect() as admin:
        admin = admin.execution_options(isolation_level="AUTOCOMMIT")
        # As far as lossless can tell, the server is gone: no new session gets in.
        admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        try:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            outcome = _finish(process)
        finally:
            admin.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    assert_one_error(
        outcome,
        2,
        "connection lost while committing revision g2",
        "it may have committed",
        "the database could not be read afterwards",
        "check with `lossless current`",
    )
    _no_traceback(outcome)


def test_ctrl_c_says_where_the_database_is(
    tmp_path: Path, lossless_database: str, conn: Connection
) -> None:
    ini = _slow_project(tmp_path, lossless_database, SLOW_REVISIONS)
    process = start_lossless("-c", str(ini), "--url", lossless_database, "upgrade")
    _wait_for_query(conn, "pg_sleep")
    process.send_signal(signal.SIGINT)
    outcome = _finish(process)

    assert outcome.code == 130, outcome
    _no_traceback(outcome)
    assert outcome.err.splitlines()[-1] == (
        "lossless: interrupted during upgrade a1 -> s2; the database is at a1"
    ), outcome
    assert revision_of(conn) == ["a1"]
    assert "slow_marker" not in _tables(conn)


def _tables(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
    )
