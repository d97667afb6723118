"""On a live database: bounded lock waits with retries, blockers named, a watched migration lock."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, inspect, text

from scenarios import migration_014
from tests.cli.conftest import (
    Lossless,
    MigrateTo,
    assert_one_error,
    revision_of,
    run_lossless,
    start_lossless,
)
from tests.cli.project import REVISIONS, write_project
from toolkit import migrate
from toolkit.migrate import Project
from toolkit.postgres.url import libpq_url

BLOCKER = "nightly report"

#: ``a1`` and a revision that takes a few seconds, statement after statement.
SLOW_REVISIONS = {
    "a1": REVISIONS["a1"],
    "s2": (
        "a slow one",
        "a1",
        """
def upgrade():
    op.execute("CREATE TABLE slow_marker (id int)")
    op.execute("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")
    # one statement: the session stays active (not idle between statements) while it sleeps
    op.execute("SELECT pg_sleep(4)")


def downgrade():
    op.drop_table("slow_marker")
""",
    ),
}


@contextmanager
def _blocking(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A session of the application reading ``accounts`` in an open transaction."""
    with psycopg.connect(libpq_url(url), autocommit=False) as blocker:
        blocker.execute(f"SET application_name = '{BLOCKER}'")
        blocker.execute("SELECT count(*) FROM accounts")  # ACCESS SHARE until the end
        yield blocker
        blocker.rollback()


def test_retries_are_reported_and_the_blocker_is_named(
    migrate_to: MigrateTo, lossless: Lossless, lossless_database: str, conn: Connection
) -> None:
    migrate_to("b2")
    with _blocking(lossless_database) as blocker:
        pid = blocker.info.backend_pid
        started = time.monotonic()
        outcome = lossless("--lock-timeout", "300ms", "--lock-retries", "2", "upgrade", "c3")
        took = time.monotonic() - started

    line = assert_one_error(
        outcome, 2, "a table stayed locked", "--lock-timeout 0.3s", "after 2 retries"
    )
    assert (
        f"waiting for ACCESS EXCLUSIVE on public.accounts, blocked by pid {pid} ({BLOCKER})" in line
    )
    assert "SELECT count(*) FROM accounts" in line
    assert "the database is at b2" in line
    retries = [ln for ln in outcome.err.splitlines() if "retry" in ln and "of 2" in ln]
    assert len(retries) == 2, outcome
    assert "retry 1 of 2" in retries[0] and "retry 2 of 2" in retries[1]
    assert took >= 3 * 0.3
    assert revision_of(conn) == ["b2"]
    assert "verified" not in {c["name"] for c in inspect(conn).get_columns("accounts")}


def test_a_retry_succeeds_once_the_blocker_lets_go(
    migrate_to: MigrateTo, project: Path, lossless_database: str, conn: Connection
) -> None:
    migrate_to("b2")
    args = ("-c", str(project), "--url", lossless_database, "--lock-timeout", "300ms")
    with _blocking(lossless_database):
        running = start_lossless(*args, "--lock-retries", "8", "upgrade", "c3")
        _wait_until_waiting(conn)
        time.sleep(1.5)  # the first attempt gave up after 0.3 s; a retry is under way
    _, err = running.communicate(timeout=60)

    assert running.returncode == 0, err
    assert "retry 1 of 8" in err
    assert revision_of(conn) == ["c3"]


def _wait_until_waiting(conn: Connection, *, seconds: float = 30) -> None:
    """Until the upgrade's session waits for a table lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'lossless upgrade' AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + seconds
    while conn.execute(query).scalar_one() == 0:
        assert time.monotonic() < deadline, "the upgrade never waited for a lock"
        time.sleep(0.02)


def test_retries_from_the_environment_and_the_blocker_named_without_them(
    migrate_to: MigrateTo, lossless: Lossless, lossless_database: str, conn: Connection
) -> None:
    migrate_to("b2")
    with _blocking(lossless_database) as blocker:
        pid = blocker.info.backend_pid
        once = lossless(
            "--lock-timeout", "300ms", "upgrade", "c3", env={"LOSSLESS_LOCK_RETRIES": "1"}
        )
        never = lossless("--lock-timeout", "300ms", "upgrade", "c3")

    assert "retry 1 of 1" in once.err
    assert_one_error(once, 2, "after 1 retries", f"pid {pid} ({BLOCKER})")
    line = assert_one_error(never, 2, "a table stayed locked", f"pid {pid} ({BLOCKER})")
    assert "retry" not in never.err
    assert "retries" not in line
    assert revision_of(conn) == ["b2"]


def test_a_lock_prelude_that_cannot_get_its_locks_names_the_blocker(
    lossless_database: str, conn: Connection
) -> None:
    """Migration 014's upgrade needs commitments, held by an application transaction: every
    attempt of the lock prelude gives up within its budget (not --lock-timeout's 10 s),
    the revision is retried once, then fails naming the session in the way."""
    scenario = migration_014.SCENARIO
    migrate.upgrade(Project.for_scenario(scenario), lossless_database, scenario.before)
    with psycopg.connect(libpq_url(lossless_database), autocommit=False) as blocker:
        blocker.execute(f"SET application_name = '{BLOCKER}'")
        blocker.execute("LOCK TABLE commitments IN ROW EXCLUSIVE MODE")
        outcome = run_lossless(
            "--scenario",
            scenario.name,
            "--url",
            lossless_database,
            "--lock-retries",
            "1",
            "upgrade",
        )
        pid = blocker.info.backend_pid
        blocker.rollback()

    line = assert_one_error(
        outcome,
        2,
        "a table stayed locked by another session for longer than the lock prelude's budget"
        " (half of deadlock_timeout, at most --lock-timeout 10s) after 1 retries",
        f"waiting for ACCESS EXCLUSIVE on public.commitments, blocked by pid {pid} ({BLOCKER})",
        f"the database is at {scenario.before}",
    )
    assert "LOCK TABLE commitments IN ROW EXCLUSIVE MODE" in line
    assert "retry 1 of 1" in outcome.err
    assert revision_of(conn) == [scenario.before]


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "slow", revisions=SLOW_REVISIONS)


def _migration_session(conn: Connection, *, seconds: float = 30) -> int:
    """The pid of the running upgrade's session, once it is inside the slow revision."""
    deadline = time.monotonic() + seconds
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'lossless upgrade' AND query LIKE '%pg_sleep%'"
    )
    while (pid := conn.execute(query).scalar()) is None:
        assert time.monotonic() < deadline, "the upgrade never got to its slow revision"
        time.sleep(0.05)
    return int(pid)


def test_a_lost_lock_session_stops_the_run_and_rolls_back(
    slow_project: Path, lossless_database: str, conn: Connection
) -> None:
    args = ("-c", str(slow_project), "--url", lossless_database)
    assert run_lossless(*args, "upgrade", "a1").code == 0
    running = start_lossless(*args, "upgrade")
    pid = _migration_session(conn)
    # the session that holds the migration lock is the one that migrates
    holder = conn.execute(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    ).scalar()
    assert holder == pid
    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    _, err = running.communicate(timeout=60)

    assert running.returncode == 2, err
    assert "connection lost during revision s2" in err
    assert "the database is at a1" in err
    assert revision_of(conn) == ["a1"]
    assert not inspect(conn).has_table("slow_marker")


def test_a_new_run_names_a_previous_runs_session_still_working(
    slow_project: Path, lossless_database: str, conn: Connection
) -> None:
    args = ("-c", str(slow_project), "--url", lossless_database)
    assert run_lossless(*args, "upgrade", "a1").code == 0
    first = start_lossless(*args, "upgrade")
    pid = _migration_session(conn)

    second = run_lossless(*args, "--lock-timeout", "300ms", "upgrade")
    assert_one_error(
        second,
        2,
        "another run holds the migration lock",
        f"pid {pid}",
        "lossless upgrade",
        "still working",
        "pg_sleep",
    )

    # The CLI of the first run dies: as long as its session lives on the server, that
    # session holds the lock; once the lock is free the session is gone.
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    alive_without_lock = text(
        "SELECT count(*) FROM pg_stat_activity AS a WHERE a.pid = :pid AND NOT EXISTS "
        "(SELECT FROM pg_locks AS l WHERE l.pid = a.pid AND l.locktype = 'advisory')"
    )
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    deadline = time.monotonic() + 30
    while conn.execute(alive, {"pid": pid}).scalar_one():
        assert conn.execute(alive_without_lock, {"pid": pid}).scalar_one() == 0
        assert time.monotonic() < deadline, "the killed run's session never ended"
        time.sleep(0.01)
    third = run_lossless(*args, "--lock-timeout", "30s", "upgrade")
    assert third.code == 0, third
    assert revision_of(conn) == ["s2"]


def test_preflight_reports_each_tables_locks_and_how_long_they_were_held(
    slow_project: Path, lossless_database: str, conn: Connection
) -> None:
    args = ("-c", str(slow_project), "--url", lossless_database)
    assert run_lossless(*args, "upgrade", "a1").code == 0

    outcome = run_lossless(*args, "preflight", "--json")

    assert outcome.code == 0, outcome
    locks = {(lk["table"], lk["mode"]): lk for lk in json.loads(outcome.out)["locks"]}
    held = locks[("accounts", "SHARE ROW EXCLUSIVE")]
    assert held["schema"] == "public"
    assert held["taken_by"] == "upgrade a1 -> s2"
    assert 3.5 <= held["held_s"] <= 30  # 4 s of sleeping after the LOCK
    assert held["waited_s"] == 0
    # preflight's own snapshot reads accounts before the run; that lock is not the revision's
    assert ("accounts", "ACCESS SHARE") not in locks
    assert revision_of(conn) == ["a1"]

    assert "table locks" not in run_lossless(*args, "preflight").out
    text_report = run_lossless(*args, "preflight", "--locks")
    row = next(ln for ln in text_report.out.splitlines() if ln.startswith("public.accounts"))
    assert row.split()[1:4] == ["SHARE", "ROW", "EXCLUSIVE"]
