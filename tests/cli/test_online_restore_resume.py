"""``lossless downgrade --online`` of two ``restore_column_from_jsonb`` killed (SIGKILL) in
each phase, then run again: it ends exactly as a plain downgrade of the same data (full
catalog fingerprint); ``--abort`` after a kill gives the stashed database back."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, text

from tests.cli.conftest import engine_on, run_lossless, start_lossless
from tests.cli.test_online_resume import SESSIONS, _holding, _until
from tests.ops.online_restore_project import R1, R2, project, seed, write_project
from tests.ops.test_online import leftovers
from toolkit import migrate
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

ROWS = 300
WAITING = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE NOT l.granted AND a.datname = current_database()"
    " AND a.application_name LIKE 'lossless%'"
)
CONTRACT_WAITING = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE NOT l.granted AND l.mode = 'AccessExclusiveLock' AND a.datname = current_database()"
    " AND a.application_name LIKE 'lossless%'"
)
INVALID = text("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
UNDER_WAY = text("SELECT to_regclass('lossless_online') IS NOT NULL")
ROWS_DONE = text("SELECT coalesce(sum((payload ->> 'rows')::int), 0) FROM lossless_online")


@pytest.fixture(scope="module")
def ini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("restore_resume"))


@pytest.fixture(scope="module")
def template(lossless_server: Server, ini: Path) -> Iterator[str]:
    with scratch_database(lossless_server.url, prefix="lossless_rresume_template") as url:
        migrate.upgrade(project(ini), url, R1)
        with engine_on(url) as engine, engine.begin() as conn:
            seed(conn, ROWS)
        migrate.upgrade(project(ini), url, R2)
        yield url


@contextmanager
def _copy(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_rresume", template=name) as url:
        yield url


def _rows_done(conn: Connection) -> int:
    if not conn.execute(UNDER_WAY).scalar():
        return 0
    return int(conn.execute(ROWS_DONE).scalar() or 0)


def _downgrade(ini: Path, url: str, *more: str) -> subprocess.Popen[str]:
    return start_lossless("-c", str(ini), "--url", url, "downgrade", R1, "--online", *more)


def _kill(process: subprocess.Popen[str], conn: Connection) -> None:
    process.kill()
    process.communicate(timeout=60)
    _until(conn, lambda: conn.execute(SESSIONS).scalar() == 0, "the killed session end")


def _after_rerun(server: Server, template: str, ini: Path, url: str) -> None:
    """Rerun the downgrade: it ends as a plain one of the same data would."""
    outcome = run_lossless("-c", str(ini), "--url", url, "downgrade", R1, "--online")
    assert outcome.code == 0, outcome
    with _copy(server, template) as plain:
        migrate.downgrade(project(ini), plain, R1)
        with engine_on(plain) as a, a.connect() as c1, engine_on(url) as b, b.connect() as c2:
            assert fingerprint_diff(fingerprint(c1), fingerprint(c2)) == []
            assert leftovers(c2) == []
    assert migrate.current(project(ini), url) == (R1,)


def test_killed_during_expand_changes_nothing(
    lossless_server: Server, template: str, ini: Path
) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            before = fingerprint(conn)
            with _holding(url, "LOCK TABLE items IN ROW EXCLUSIVE MODE"):
                process = _downgrade(ini, url)
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "expand wait")
                _kill(process, conn)
            conn.rollback()
            assert fingerprint_diff(before, fingerprint(conn)) == []
        _after_rerun(lossless_server, template, ini, url)


def test_killed_during_backfill_resumes(lossless_server: Server, template: str, ini: Path) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _downgrade(ini, url, "--batch-size", "1")
            _until(conn, lambda: _rows_done(conn) >= 20, "20 batches")
            _kill(process, conn)
            assert 20 <= int(conn.execute(ROWS_DONE).scalar() or 0) < 2 * ROWS
        _after_rerun(lossless_server, template, ini, url)


def test_killed_during_an_index_build_resumes(
    lossless_server: Server, template: str, ini: Path
) -> None:
    """CREATE INDEX CONCURRENTLY waits for the transactions older than it: killed then, it
    leaves an invalid index, which the rerun drops and builds again."""
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn, psycopg.connect(libpq_url(url)) as reader:
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            process = _downgrade(ini, url, "--batch-size", "1")
            _until(conn, lambda: bool(conn.execute(UNDER_WAY).scalar()), "the expand")
            reader.execute("SELECT count(*) FROM goals")  # a snapshot the build waits for
            _until(conn, lambda: bool(conn.execute(INVALID).scalar()), "an index being built")
            _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "the build waiting")
            _kill(process, conn)
            reader.rollback()
            assert conn.execute(INVALID).scalar() == 1
        _after_rerun(lossless_server, template, ini, url)


def test_killed_while_adding_constraints_then_during_contract_resumes(
    lossless_server: Server, template: str, ini: Path
) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _downgrade(ini, url)
            _until(conn, lambda: bool(conn.execute(UNDER_WAY).scalar()), "the expand")
            conn.rollback()
            # The foreign key to goals (the last constraint) waits for this lock.
            with _holding(url, "LOCK TABLE goals IN SHARE MODE"):
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "constraint wait")
                _kill(process, conn)
            assert migrate.current(project(ini), url) == (R2,)
            process = _downgrade(ini, url)
            with psycopg.connect(libpq_url(url)) as reader:
                with _holding(url, "LOCK TABLE goals IN SHARE MODE"):
                    _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "constraint wait")
                    # A reader of items: the contract's ACCESS EXCLUSIVE will wait for it.
                    reader.execute("SELECT count(*) FROM items")
                _until(conn, lambda: conn.execute(CONTRACT_WAITING).scalar() > 0, "contract")
                _kill(process, conn)
                reader.rollback()
            phases = conn.execute(text("SELECT DISTINCT payload ->> 'phase' FROM lossless_online"))
            assert set(phases.scalars()) == {"constraints"}
        _after_rerun(lossless_server, template, ini, url)


def test_abort_after_a_kill_gives_the_stashed_database_back(
    lossless_server: Server, template: str, ini: Path
) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            original = fingerprint(conn)
            conn.rollback()
            process = _downgrade(ini, url, "--batch-size", "1")
            # The first restore done, the second under way: values moved out of metadata.
            _until(conn, lambda: _rows_done(conn) >= ROWS + 20, "the second restore's batches")
            _kill(process, conn)
        outcome = run_lossless("-c", str(ini), "--url", url, "downgrade", R1, "--online", "--abort")
        assert outcome.code == 0, outcome
        assert "undone: Restore items.goal_id" in outcome.err, outcome
        assert "undone: Restore items.code" in outcome.err, outcome
        with engine.connect() as conn:
            assert leftovers(conn) == []
            assert fingerprint_diff(original, fingerprint(conn)) == []
        assert migrate.current(project(ini), url) == (R2,)
