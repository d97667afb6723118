"""``lossless -s migration-014 downgrade --online`` (two collapses, then three restores)
killed (SIGKILL) in each phase, then run again: it ends exactly as a plain downgrade of the
same data (full-catalog fingerprint); ``--abort`` after a kill gives the upgraded database
back."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Connection, text

from tests.cli.conftest import engine_on, run_lossless, start_lossless
from tests.cli.test_online_resume import SESSIONS, _holding, _until
from tests.ops.test_online import leftovers
from tests.ops.test_online_collapse import add_extra_links
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("migration-014")
PROJECT = Project.for_scenario(SCENARIO)
TARGETS = 300
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
def template(lossless_server: Server) -> Iterator[str]:
    """Upgraded (plain), with extra links; ``targets.sprint_id`` had an index."""
    with scratch_database(lossless_server.url, prefix="lossless_cresume_template") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, TARGETS, 5)
        with psycopg.connect(libpq_url(url)) as conn:
            conn.execute("CREATE INDEX ix_targets_sprint ON targets (sprint_id)")
        migrate.upgrade(PROJECT, url, SCENARIO.after)
        add_extra_links(url)
        yield url


@contextmanager
def _copy(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_cresume", template=name) as url:
        yield url


def _rows_done(conn: Connection) -> int:
    if not conn.execute(UNDER_WAY).scalar():
        return 0
    return int(conn.execute(ROWS_DONE).scalar() or 0)


def _downgrade(url: str, *more: str) -> subprocess.Popen[str]:
    return start_lossless(
        "-s", "migration-014", "--url", url, "downgrade", SCENARIO.before, "--online", *more
    )


def _kill(process: subprocess.Popen[str], conn: Connection) -> None:
    process.kill()
    process.communicate(timeout=60)
    _until(conn, lambda: conn.execute(SESSIONS).scalar() == 0, "the killed session end")


def _after_rerun(server: Server, template: str, url: str) -> None:
    """Rerun the downgrade: it ends as a plain one of the same data would."""
    outcome = run_lossless(
        "-s", "migration-014", "--url", url, "downgrade", SCENARIO.before, "--online"
    )
    assert outcome.code == 0, outcome
    with _copy(server, template) as plain:
        migrate.downgrade(PROJECT, plain, SCENARIO.before)
        with engine_on(plain) as a, a.connect() as c1, engine_on(url) as b, b.connect() as c2:
            assert fingerprint_diff(fingerprint(c1), fingerprint(c2)) == []
            assert leftovers(c2) == []
    assert migrate.current(PROJECT, url) == (SCENARIO.before,)


def test_killed_during_expand_changes_nothing(lossless_server: Server, template: str) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            before = fingerprint(conn)
            with _holding(url, "LOCK TABLE targets IN ROW EXCLUSIVE MODE"):
                process = _downgrade(url)
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "expand wait")
                _kill(process, conn)
            conn.rollback()
            assert fingerprint_diff(before, fingerprint(conn)) == []
        _after_rerun(lossless_server, template, url)


def test_killed_during_backfill_resumes(lossless_server: Server, template: str) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _downgrade(url, "--batch-size", "1")
            # Both collapses fill targets: one pass, each batch advances both entries.
            _until(conn, lambda: _rows_done(conn) >= 40, "20 batches")
            _kill(process, conn)
            goal, sprint = conn.execute(
                text(
                    "SELECT (SELECT payload ->> 'rows' FROM lossless_online"
                    "  WHERE table_name = 'targets' AND column_name = c)::int"
                    " FROM unnest(ARRAY['goal_id', 'sprint_id']) AS c"
                )
            ).scalars()
            assert goal == sprint and 20 <= sprint < TARGETS
            filled = conn.execute(text("SELECT count(sprint_id) FROM targets")).scalar()
            assert 20 <= int(filled or 0) < TARGETS
        _after_rerun(lossless_server, template, url)


def test_killed_during_an_index_build_resumes(lossless_server: Server, template: str) -> None:
    """``ix_targets_sprint`` is built concurrently, which waits for older transactions:
    killed then, it leaves an invalid index, which the rerun drops and builds again."""
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn, psycopg.connect(libpq_url(url)) as reader:
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            process = _downgrade(url, "--batch-size", "1")
            _until(conn, lambda: bool(conn.execute(UNDER_WAY).scalar()), "the expand")
            reader.execute("SELECT count(*) FROM sprints")  # a snapshot the build waits for
            _until(conn, lambda: bool(conn.execute(INVALID).scalar()), "an index being built")
            _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "the build waiting")
            _kill(process, conn)
            reader.rollback()
            assert conn.execute(INVALID).scalar() == 1
        _after_rerun(lossless_server, template, url)


def test_killed_while_adding_constraints_then_during_contract_resumes(
    lossless_server: Server, template: str
) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            # The goal collapse's foreign key to client_goals waits for this lock.
            with _holding(url, "LOCK TABLE client_goals IN SHARE MODE"):
                process = _downgrade(url)
                _until(conn, lambda: bool(conn.execute(UNDER_WAY).scalar()), "the expand")
                conn.rollback()
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "constraint wait")
                _kill(process, conn)
            phases = conn.execute(
                text("SELECT table_name, column_name, payload ->> 'phase' FROM lossless_online")
            )
            assert ("targets", "goal_id", "constraints") in {tuple(r) for r in phases}
            conn.rollback()
            assert migrate.current(PROJECT, url) == (SCENARIO.after,)
            with psycopg.connect(libpq_url(url)) as reader:
                # A reader of a junction: the contract's ACCESS EXCLUSIVE (to drop it)
                # waits for it; nothing before the contract does.
                reader.execute("SELECT count(*) FROM target_goal_links")
                process = _downgrade(url)
                _until(conn, lambda: conn.execute(CONTRACT_WAITING).scalar() > 0, "contract")
                _kill(process, conn)
                reader.rollback()
            phases = conn.execute(text("SELECT DISTINCT payload ->> 'phase' FROM lossless_online"))
            assert set(phases.scalars()) == {"constraints"}
        _after_rerun(lossless_server, template, url)


def test_abort_after_a_kill_gives_the_upgraded_database_back(
    lossless_server: Server, template: str
) -> None:
    with _copy(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            original = fingerprint(conn)
            conn.rollback()
            process = _downgrade(url, "--batch-size", "1")
            # The sprint collapse done, the goal one under way.
            _until(conn, lambda: _rows_done(conn) >= TARGETS + 20, "the second collapse")
            _kill(process, conn)
        outcome = run_lossless(
            "-s", "migration-014", "--url", url, "downgrade", SCENARIO.before, "--online", "--abort"
        )
        assert outcome.code == 0, outcome
        assert "undone: Collapse junction target_sprint_links" in outcome.err, outcome
        assert "undone: Collapse junction target_goal_links" in outcome.err, outcome
        with engine.connect() as conn:
            assert leftovers(conn) == []
            assert fingerprint_diff(original, fingerprint(conn)) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.after,)
