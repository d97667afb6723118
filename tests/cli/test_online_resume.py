"""``lossless upgrade --online`` killed (SIGKILL) in each phase, then run again.

Each kill leaves the database at the old revision with what the committed phases made; a
rerun resumes and ends exactly as a plain upgrade of the same data (full-catalog
fingerprint), and a plain downgrade then gives the original database back.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Connection, text

from tests.cli.conftest import engine_on, run_lossless, start_lossless
from tests.ops.test_online import leftovers, normalized_fingerprint
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("migration-014")
PROJECT = Project.for_scenario(SCENARIO)
#: Seeded targets: at one row per batch, the backfill lasts long enough to be caught.
TARGETS = 400
WAITING = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE NOT l.granted AND a.datname = current_database()"
    " AND a.application_name = 'lossless upgrade'"
)
#: The contract's ACCESS EXCLUSIVE request, waiting.
CONTRACT_WAITING = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE NOT l.granted AND l.mode = 'AccessExclusiveLock' AND a.datname = current_database()"
    " AND a.application_name = 'lossless upgrade'"
)
SESSIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name LIKE 'lossless%'"
)
ROWS_DONE = text("SELECT coalesce(sum((payload ->> 'rows')::int), 0) FROM lossless_online")


def _rows_done(conn: Connection) -> int:
    """Rows the backfills of every operation covered so far (0 before the expand)."""
    if not conn.execute(text("SELECT to_regclass('lossless_online') IS NOT NULL")).scalar():
        return 0
    return int(conn.execute(ROWS_DONE).scalar() or 0)


@pytest.fixture(scope="module")
def template(lossless_server: Server) -> Iterator[str]:
    with scratch_database(lossless_server.url, prefix="lossless_resume_template") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, TARGETS, 5)
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_resume", template=name) as url:
        yield url


def _until(conn: Connection, ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` (each time in a new transaction: the statistics views keep one
    snapshot per transaction)."""
    deadline = time.monotonic() + 120
    while True:
        conn.rollback()
        if ready():
            conn.rollback()
            return
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def _kill(process: subprocess.Popen[str], conn: Connection) -> None:
    """SIGKILL the CLI, then wait until the server has ended its session too."""
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    _until(conn, lambda: conn.execute(SESSIONS).scalar() == 0, "the killed session end")


def _upgrade(url: str, *more: str) -> subprocess.Popen[str]:
    return start_lossless(
        "-s", "migration-014", "--url", url, "upgrade", "--online", "--batch-size", "1", *more
    )


@contextmanager
def _holding(url: str, statement: str) -> Iterator[None]:
    """An application transaction holding the lock ``statement`` takes, until the end."""
    with psycopg.connect(libpq_url(url)) as blocker:
        blocker.execute(statement)
        yield
        blocker.rollback()


def _after_rerun(server: Server, template: str, url: str) -> str:
    """Rerun the upgrade: it ends as a plain one would; so does a downgrade after it. What
    the rerun said."""
    outcome = run_lossless("-s", "migration-014", "--url", url, "upgrade", "--online")
    assert outcome.code == 0, outcome
    said = outcome.out + outcome.err
    with engine_on(url) as engine, engine.connect() as conn:
        assert leftovers(conn) == []
    with copy_of(server, template) as plain:
        migrate.upgrade(PROJECT, plain, SCENARIO.after)
        assert fingerprint_diff(normalized_fingerprint(plain), normalized_fingerprint(url)) == []
        migrate.downgrade(PROJECT, plain, SCENARIO.before)
        outcome = run_lossless("-s", "migration-014", "--url", url, "downgrade", SCENARIO.before)
        assert outcome.code == 0, outcome
        with engine_on(plain) as a, a.connect() as c1, engine_on(url) as b, b.connect() as c2:
            assert fingerprint_diff(fingerprint(c1), fingerprint(c2)) == []
    return said


def test_killed_during_expand_changes_nothing_and_a_rerun_completes(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            before = fingerprint(conn)
            with _holding(url, "LOCK TABLE commitments IN ROW EXCLUSIVE MODE"):
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
            process = _upgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 20, "20 batches")
            _kill(process, conn)
            conn.rollback()
            done = conn.execute(ROWS_DONE).scalar()
            assert 20 <= done < TARGETS
            # The promotes go in key order: the same key in both entries.
            lasts = conn.execute(text(_LASTS)).scalars().all()
            assert len(lasts) == 2 and lasts[0] == lasts[1] and list(lasts[0]) == ["id"], lasts
            assert migrate.current(PROJECT, url) == (SCENARIO.before,)
            assert leftovers(conn)  # triggers and progress, for the rerun
        said = _after_rerun(lossless_server, template, url)
        # The entries advanced together: the rerun still fills both in one pass.
        assert "one pass with targets.(goal_id, sprint_id)" in said, said


def test_entries_left_apart_are_filled_in_passes_of_their_own(
    lossless_server: Server, template: str
) -> None:
    """Both promotes of targets share one pass, their entries advancing together; entries
    that disagree (one set back to the start here) are filled apart, and end the same."""
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _upgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 40, "20 batches")
            _kill(process, conn)
            conn.rollback()
            rows = {str(c): int(n) for c, n in conn.execute(text(_PROMOTES))}
            assert rows["goal_id"] == rows["sprint_id"] >= 20, rows
            conn.execute(
                text(
                    "UPDATE lossless_online SET payload = payload - 'last'"
                    " || '{\"rows\": 0}'::jsonb"
                    " WHERE table_name = 'targets' AND column_name = 'sprint_id'"
                )
            )
            conn.commit()
        said = _after_rerun(lossless_server, template, url)
        assert "backfill of targets.sprint_id" in said, said
        assert "one pass with targets.(goal_id, sprint_id)" not in said, said
        assert "one pass with commitments.(goal_id, sprint_id)" in said, said


_LASTS = "SELECT payload -> 'last' FROM lossless_online WHERE table_name = 'targets'"
_PROMOTES = (
    "SELECT column_name, (payload ->> 'rows')::int FROM lossless_online"
    " WHERE table_name = 'targets'"
)


def test_abort_after_a_kill_gives_the_original_database_back(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            original = fingerprint(conn)
            conn.rollback()
            process = _upgrade(url)
            # Both promotes done, the first stash under way: keys written into metadata.
            _until(conn, lambda: _rows_done(conn) >= 2 * TARGETS + 20, "a stash's batches")
            _kill(process, conn)
        outcome = run_lossless(
            "-s", "migration-014", "--url", url, "upgrade", "--online", "--abort"
        )
        assert outcome.code == 0, outcome
        assert "online run aborted: undone: Stash sprints.goal_id" in outcome.err, outcome
        assert "undone: Promote targets.goal_id" in outcome.err, outcome
        with engine.connect() as conn:
            assert leftovers(conn) == []
            assert fingerprint_diff(original, fingerprint(conn)) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.before,)


def test_killed_while_adding_constraints_resumes(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _upgrade(url)
            _until(
                conn,
                lambda: bool(
                    conn.execute(text("SELECT to_regclass('lossless_online') IS NOT NULL")).scalar()
                ),
                "the expand",
            )
            conn.rollback()
            # The first junction's foreign key to client_goals waits for this lock.
            with _holding(url, "LOCK TABLE client_goals IN SHARE MODE"):
                _until(conn, lambda: conn.execute(WAITING).scalar() > 0, "constraint wait")
                _kill(process, conn)
            conn.rollback()
            assert migrate.current(PROJECT, url) == (SCENARIO.before,)
        _after_rerun(lossless_server, template, url)


JUNCTION_INDEXES = text(
    "SELECT i.indexrelid::regclass::text, i.indisvalid, i.indisprimary FROM pg_index i"
    " WHERE i.indrelid = 'target_goal_links'::regclass ORDER BY 1"
)
#: A lock request of the upgrade on the junction, waiting.
JUNCTION_WAITING = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE NOT l.granted AND l.relation = 'target_goal_links'::regclass"
    " AND a.application_name = 'lossless upgrade'"
)


def test_killed_while_attaching_the_primary_key_resumes(
    lossless_server: Server, template: str
) -> None:
    """The junction's primary key and indexes are built after the backfill: while it runs
    the junction has its unique pair only. Killed once the key's index is built but before
    it became the primary key, the rerun attaches it."""
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _upgrade(url)
            _until(conn, lambda: _rows_done(conn) >= 4, "the backfill")
            assert conn.execute(JUNCTION_INDEXES).all() == [("uq_target_goal", True, False)]
            conn.rollback()
            # A reader of the junction: only the primary key's ACCESS EXCLUSIVE waits for it.
            with _holding(url, "LOCK TABLE target_goal_links IN ACCESS SHARE MODE"):
                _until(conn, lambda: conn.execute(JUNCTION_WAITING).scalar() > 0, "attach wait")
                _kill(process, conn)
            conn.rollback()
            assert conn.execute(JUNCTION_INDEXES).all() == [
                ("ix_target_goal_links_goal_id", True, False),
                ("ix_target_goal_links_target_id", True, False),
                ("target_goal_links_pkey", True, False),
                ("uq_target_goal", True, False),
            ]
            assert migrate.current(PROJECT, url) == (SCENARIO.before,)
        _after_rerun(lossless_server, template, url)


#: One snapshot of the upgrade's locks: whether it waits for client_goals, and the modes it
#: holds on the junction meanwhile.
#: A target, and a goal it is not linked to.
MOVED_TARGET = (
    "SELECT t.id, (SELECT g.id FROM client_goals AS g WHERE g.id IS DISTINCT FROM t.goal_id"
    " ORDER BY g.id LIMIT 1) FROM targets AS t ORDER BY t.id LIMIT 1"
)
ADD_KEY_LOCKS = text(
    "SELECT bool_or(NOT l.granted AND l.relation = 'client_goals'::regclass),"
    " coalesce(array_agg(l.mode) FILTER (WHERE l.granted"
    " AND l.relation = 'target_goal_links'::regclass), '{}')"
    " FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
    " WHERE a.application_name = 'lossless upgrade'"
)


def test_a_foreign_key_locks_its_referenced_table_first(
    lossless_server: Server, template: str
) -> None:
    """An application writes a parent before its children. Adding the junction's foreign
    key to client_goals takes client_goals first: while it waits for an application
    transaction that wrote a goal, it holds nothing on the junction, so that transaction
    (and every write to targets, whose mirror writes the junction) goes on. ``ALTER
    TABLE`` alone would hold the junction while waiting: a lock cycle, broken only by
    ``lock_timeout``, again and again."""
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            process = _upgrade(url, "-x", "online_lock_timeout_ms=60000")
            _until(conn, lambda: _rows_done(conn) > 0, "the backfill")
            conn.rollback()
            seen: list[object] = []
            with psycopg.connect(libpq_url(url)) as app:
                app.execute("LOCK TABLE client_goals IN ROW EXCLUSIVE MODE")

                def waiting() -> bool:
                    seen[:] = conn.execute(ADD_KEY_LOCKS).one()
                    return bool(seen[0])

                _until(conn, waiting, "the foreign key waiting for client_goals")
                assert seen[1] == []
                # The application's transaction goes on to a child row (the mirror writes the
                # junction): not blocked.
                app.execute("SET LOCAL lock_timeout = '5s'")
                target, goal = app.execute(MOVED_TARGET).fetchone() or ("", "")
                app.execute("UPDATE targets SET goal_id = %s WHERE id = %s", (goal, target))
                app.commit()
            outcome = process.communicate(timeout=120)
            assert process.returncode == 0, outcome
        with engine_on(url) as engine, engine.connect() as conn:
            assert leftovers(conn) == []
            assert migrate.current(PROJECT, url) == (SCENARIO.after,)
            link = text("SELECT goal_id FROM target_goal_links WHERE target_id = :t")
            assert conn.execute(link, {"t": target}).scalars().all() == [goal]


def test_killed_during_contract_resumes(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            # A reader of targets: only the contract's ACCESS EXCLUSIVE waits for it.
            with _holding(url, "SELECT count(*) FROM targets"):
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


def test_a_downgrade_after_a_killed_online_upgrade_undoes_it_first(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url, engine_on(url) as engine:
        with engine.connect() as conn:
            original = fingerprint(conn)
            conn.rollback()
            process = _upgrade(url)
            _until(conn, lambda: _rows_done(conn) >= TARGETS + 20, "the second promote's batches")
            _kill(process, conn)
        # At the old revision already: the downgrade to it has nothing to run but the clean-up.
        outcome = run_lossless("-s", "migration-014", "--url", url, "downgrade", SCENARIO.before)
        assert outcome.code == 0, outcome
        assert f"an online upgrade to {SCENARIO.after} did not finish" in outcome.err, outcome
        assert "undone: Promote targets.goal_id" in outcome.err, outcome
        with engine.connect() as conn:
            assert leftovers(conn) == []
            assert fingerprint_diff(original, fingerprint(conn)) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.before,)
