"""``lossless -s iteration-decoupling upgrade --online`` (``move_fk_to_child``) killed
(SIGKILL) in each phase, then run again, or aborted.

Each kill leaves the database at the old revision with what the committed phases made; a
rerun resumes and ends exactly as a plain upgrade of the same data (full-catalog
fingerprint); an abort gives the original database back.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from tests.cli.conftest import engine_on, run_lossless, start_lossless
from tests.cli.test_online_resume import (
    CONTRACT_WAITING,
    ROWS_DONE,
    WAITING,
    _holding,
    _kill,
    _rows_done,
    _until,
)
from tests.ops.test_online import leftovers
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("iteration-decoupling")
PROJECT = Project.for_scenario(SCENARIO)
#: Seeded iterations (about two thirds as many migrations: one batch each at size 1).
ITERATIONS = 360


@pytest.fixture(scope="module")
def template(lossless_server: Server) -> Iterator[str]:
    with scratch_database(lossless_server.url, prefix="lossless_resume_move") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, ITERATIONS, 6)
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_resume_move", template=name) as url:
        yield url


def _upgrade(url: str) -> subprocess.Popen[str]:
    return start_lossless(
        "-s", "iteration-decoupling", "--url", url, "upgrade", "--online", "--batch-size", "1"
    )


def _after_rerun(server: Server, template: str, url: str) -> None:
    """Rerun the upgrade: it ends as a plain one would; so does a downgrade after it."""
    outcome = run_lossless("-s", "iteration-decoupling", "--url", url, "upgrade", "--online")
    assert outcome.code == 0, outcome
    with engine_on(url) as engine, engine.connect() as conn:
        assert leftovers(conn) == []
    with copy_of(server, template) as plain:
        migrate.upgrade(PROJECT, plain, SCENARIO.after)
        with engine_on(plain) as a, a.connect() as c1, engine_on(url) as b, b.connect() as c2:
            assert fingerprint_diff(fingerprint(c1), fingerprint(c2)) == []
        migrate.downgrade(PROJECT, plain, SCENARIO.before)
        migrate.downgrade(PROJECT, url, SCENARIO.before)
        with engine_on(plain) as a, a.connect() as c1, engine_on(url) as b, b.connect() as c2:
            assert fingerprint_diff(fingerprint(c1), fingerprint(c2)) == []


def test_killed_during_expand_changes_nothing_and_a_rerun_completes(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            before = fingerprint(conn)
            conn.rollback()
            with _holding(url, "LOCK TABLE iterations_ite IN ROW EXCLUSIVE MODE"):
                process = _upgrade(url)
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "expand wait")
                _kill(process, conn)
            conn.rollback()
            assert fingerprint_diff(before, fingerprint(conn)) == []
        _after_rerun(lossless_server, template, url)


def test_killed_during_backfill_resumes_after_the_last_batch(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            migrations = conn.execute(text("SELECT count(*) FROM migrations_mig")).scalar()
            process = _upgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 20, "20 batches")
            _kill(process, conn)
            conn.rollback()
            done = conn.execute(ROWS_DONE).scalar()
            assert 20 <= done < migrations
            assert migrate.current(PROJECT, url) == (SCENARIO.before,)
            assert leftovers(conn)  # triggers and progress, for the rerun
        _after_rerun(lossless_server, template, url)


def test_killed_while_adding_constraints_resumes(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            # The new foreign key to plans_master_plm waits for this lock.
            with _holding(url, "LOCK TABLE plans_master_plm IN SHARE MODE"):
                process = _upgrade(url)
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "constraint wait")
                _kill(process, conn)
            conn.rollback()
            phases = conn.execute(
                text("SELECT DISTINCT payload ->> 'phase' FROM lossless_online")
            ).scalars()
            assert set(phases) == {"constraints"}
            assert migrate.current(PROJECT, url) == (SCENARIO.before,)
        _after_rerun(lossless_server, template, url)


def test_killed_during_contract_resumes(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            # A reader of migrations: only the contract's ACCESS EXCLUSIVE waits for it.
            with _holding(url, "SELECT count(*) FROM migrations_mig"):
                process = _upgrade(url)
                _until(conn, lambda: conn.execute(CONTRACT_WAITING).scalar() > 0, "contract wait")
                _kill(process, conn)
            conn.rollback()
            phases = conn.execute(
                text("SELECT DISTINCT payload ->> 'phase' FROM lossless_online")
            ).scalars()
            assert set(phases) == {"constraints"}
            assert migrate.current(PROJECT, url) == (SCENARIO.before,)
        _after_rerun(lossless_server, template, url)


def test_abort_after_a_kill_gives_the_original_database_back(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            original = fingerprint(conn)
            conn.rollback()
            process = _upgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 40, "40 batches")
            _kill(process, conn)
            conn.rollback()
            stashed = conn.execute(
                text("SELECT count(*) FROM migrations_mig WHERE mig_metadata ? 'legacy_plm_id'")
            ).scalar()
            assert stashed > 0  # keys written into the metadata, to be removed
        outcome = run_lossless(
            "-s", "iteration-decoupling", "--url", url, "upgrade", "--online", "--abort"
        )
        assert outcome.code == 0, outcome
        assert "online run aborted: undone: Move migrations_mig.plm_id down" in outcome.err
        with engine.connect() as conn:
            assert leftovers(conn) == []
            assert fingerprint_diff(original, fingerprint(conn)) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.before,)


# -- move_fk_to_parent: the downgrade -------------------------------------------------------


@pytest.fixture(scope="module")
def upgraded(lossless_server: Server, template: str) -> Iterator[str]:
    """Model C after a plain upgrade."""
    with copy_of(lossless_server, template) as url:
        migrate.upgrade(PROJECT, url, SCENARIO.after)
        name = url.rsplit("/", 1)[1]
        with scratch_database(
            lossless_server.url, prefix="lossless_resume_up", template=name
        ) as up:
            yield up


#: The same waits, of the downgrade's session.
DOWN_WAITING = text(str(WAITING).replace("lossless upgrade", "lossless downgrade"))
DOWN_CONTRACT_WAITING = text(
    str(CONTRACT_WAITING).replace("lossless upgrade", "lossless downgrade")
)


def _downgrade(url: str, *more: str) -> subprocess.Popen[str]:
    return start_lossless(
        "-s",
        "iteration-decoupling",
        "--url",
        url,
        "downgrade",
        SCENARIO.before,
        "--online",
        "--batch-size",
        "1",
        *more,
    )


def _after_downgrade_rerun(server: Server, upgraded: str, url: str) -> None:
    outcome = run_lossless(
        "-s", "iteration-decoupling", "--url", url, "downgrade", SCENARIO.before, "--online"
    )
    assert outcome.code == 0, outcome
    with engine_on(url) as engine, engine.connect() as conn:
        assert leftovers(conn) == []
    with copy_of(server, upgraded) as plain:
        migrate.downgrade(PROJECT, plain, SCENARIO.before)
        with engine_on(plain) as a, a.connect() as c1, engine_on(url) as b, b.connect() as c2:
            assert fingerprint_diff(fingerprint(c1), fingerprint(c2)) == []


def test_a_downgrade_killed_in_each_phase_resumes(lossless_server: Server, upgraded: str) -> None:
    """Killed during its expand, its backfill, its constraints and its contract (each
    time a rerun picks up), then completed: as a plain downgrade."""
    with copy_of(lossless_server, upgraded) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            before = fingerprint(conn)
            conn.rollback()
            with _holding(url, "LOCK TABLE iterations_ite IN ROW EXCLUSIVE MODE"):
                process = _downgrade(url)
                _until(conn, lambda: conn.execute(DOWN_WAITING).scalar() > 0, "expand wait")
                _kill(process, conn)
            conn.rollback()
            assert fingerprint_diff(before, fingerprint(conn)) == []
            conn.rollback()
            process = _downgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 20, "20 batches")
            _kill(process, conn)
            conn.rollback()
            assert conn.execute(ROWS_DONE).scalar() >= 20
            conn.rollback()
            with _holding(url, "LOCK TABLE plans_master_plm IN SHARE MODE"):
                process = _downgrade(url)
                _until(conn, lambda: conn.execute(DOWN_WAITING).scalar() > 0, "constraint wait")
                _kill(process, conn)
            conn.rollback()
            with _holding(url, "SELECT count(*) FROM migrations_mig"):
                process = _downgrade(url)
                _until(
                    conn, lambda: conn.execute(DOWN_CONTRACT_WAITING).scalar() > 0, "contract wait"
                )
                _kill(process, conn)
            conn.rollback()
            phases = conn.execute(
                text("SELECT DISTINCT payload ->> 'phase' FROM lossless_online")
            ).scalars()
            assert set(phases) == {"constraints"}
            assert migrate.current(PROJECT, url) == (SCENARIO.after,)
        _after_downgrade_rerun(lossless_server, upgraded, url)


def test_an_aborted_downgrade_gives_the_original_database_back(
    lossless_server: Server, upgraded: str
) -> None:
    with copy_of(lossless_server, upgraded) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            original = fingerprint(conn)
            conn.rollback()
            process = _downgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 40, "40 batches")
            _kill(process, conn)
            conn.rollback()
            moved = conn.execute(
                text("SELECT count(*) FROM migrations_mig WHERE lossless_kept_plm_id IS NOT NULL")
            ).scalar()
            assert moved > 0  # kept plans moved out of the metadata, to be put back
        outcome = run_lossless(
            "-s",
            "iteration-decoupling",
            "--url",
            url,
            "downgrade",
            SCENARIO.before,
            "--online",
            "--abort",
        )
        assert outcome.code == 0, outcome
        assert "online run aborted: undone: Move iterations_ite.plm_id up" in outcome.err
        with engine.connect() as conn:
            assert leftovers(conn) == []
            assert fingerprint_diff(original, fingerprint(conn)) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.after,)
