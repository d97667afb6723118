"""The migration lock: two runs never migrate one database at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Connection, Engine, text

from tests.cli.conftest import (
    Lossless,
    MigrateTo,
    assert_one_error,
    revision_of,
    run_lossless,
    start_lossless,
)
from toolkit.commands.locking import MIGRATION_LOCK_KEY, lock_key_parts
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url


@contextmanager
def _holding_the_lock(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Another run, as far as lossless can tell: a session holding the migration lock."""
    with psycopg.connect(libpq_url(url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        yield holder


def _wait_for_waiter(conn: Connection, application: str, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = :name"
    )
    while conn.execute(query, {"name": application}).scalar_one() == 0:
        assert time.monotonic() < deadline, f"no {application!r} session showed up"
        time.sleep(0.05)


def _wait_for_lock_holder(conn: Connection, application: str, *, seconds: float = 30) -> None:
    high, low = lock_key_parts()
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :name "
        "AND l.classid::bigint = :high AND l.objid::bigint = :low "
        # Tests of other databases on the same server hold the same key in theirs.
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    deadline = time.monotonic() + seconds
    while conn.execute(query, {"name": application, "high": high, "low": low}).scalar_one() == 0:
        assert time.monotonic() < deadline, f"no {application!r} session took the lock"
        time.sleep(0.02)


def test_a_second_run_gives_up_after_the_lock_timeout(
    lossless: Lossless, lossless_database: str, conn: Connection
) -> None:
    with _holding_the_lock(lossless_database) as holder:
        pid = holder.info.backend_pid
        started = time.monotonic()
        outcome = lossless("--lock-timeout", "1s", "upgrade")
        waited = time.monotonic() - started

    assert_one_error(
        outcome, 2, "another run holds the migration lock", f"pid {pid}", "gave up after 1s"
    )
    assert f"waiting for the migration lock, held by pid {pid}" in outcome.err
    assert waited >= 1.0
    assert revision_of(conn) == []


def test_a_second_run_proceeds_once_the_lock_is_released(
    project: Path, lossless_database: str, conn: Connection
) -> None:
    with _holding_the_lock(lossless_database) as holder:
        pid = holder.info.backend_pid
        waiting = start_lossless(
            "-c", str(project), "--url", lossless_database, "--lock-timeout", "60s", "upgrade"
        )
        _wait_for_waiter(conn, "lossless upgrade")
        time.sleep(0.3)  # it polls meanwhile; nothing may have happened yet
        assert waiting.poll() is None
        assert revision_of(conn) == []
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        out, err = waiting.communicate(timeout=60)

    assert waiting.returncode == 0, err
    assert f"waiting for the migration lock, held by pid {pid}" in err
    assert "migration lock acquired" in err
    assert "a1 -> b2" in err and "base -> d4" in out
    assert revision_of(conn) == ["d4"]


def test_two_runs_at_once_never_migrate_together(
    migrate_to: MigrateTo,
    project: Path,
    lossless_database: str,
    lossless_engine: Engine,
    conn: Connection,
) -> None:
    migrate_to("a1")
    args = ("-c", str(project), "--url", lossless_database)
    with lossless_engine.connect() as blocker:
        # Keeps the first run busy inside its migration (b2 needs accounts) for as long as
        # the test wants, so the second run surely starts while the first one migrates.
        blocker.execute(text("LOCK TABLE accounts IN SHARE MODE"))
        first = start_lossless(*args, "--lock-timeout", "60s", "upgrade")
        _wait_for_lock_holder(conn, "lossless upgrade")
        second = run_lossless(*args, "--lock-timeout", "200ms", "upgrade")
        blocker.rollback()
    out, err = first.communicate(timeout=60)

    assert_one_error(second, 2, "another run holds the migration lock", "lossless upgrade")
    assert first.returncode == 0, err
    assert "a1 -> d4" in out
    assert revision_of(conn) == ["d4"]


def test_the_lock_is_per_database(
    project: Path, lossless_database: str, lossless_server: Server
) -> None:
    with (
        _holding_the_lock(lossless_database),
        scratch_database(lossless_server.url, prefix="lossless_test_other") as other,
    ):
        outcome = run_lossless(
            "-c", str(project), "--url", other, "--lock-timeout", "1s", "upgrade"
        )
    assert outcome.code == 0, outcome
