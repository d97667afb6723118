"""upgrade, downgrade and current, run as a DBA runs them, checked on the database."""

from __future__ import annotations

import json

from sqlalchemy import Connection, Engine, inspect, text

from tests.cli.conftest import (
    SCENARIO,
    SEEDED_TARGETS,
    Lossless,
    MigrateTo,
    assert_one_error,
    engine_on,
    revision_of,
    run_lossless,
)
from toolkit.bundled import get_scenario


def _add_accounts(conn: Connection, *emails: str) -> None:
    for email in emails:
        conn.execute(text("INSERT INTO accounts (email) VALUES (:e)"), {"e": email})


def test_upgrade_reports_operations_and_downgrade_restores(
    lossless: Lossless, conn: Connection
) -> None:
    first = lossless("upgrade", "a1")
    assert first.code == 0, first
    assert revision_of(conn) == ["a1"]
    _add_accounts(conn, "ada@example.org", "bob@example.org", "cy@example.org")

    upgraded = lossless("upgrade")
    assert upgraded.code == 0, upgraded
    assert revision_of(conn) == ["d4"]
    copied = conn.execute(text("SELECT account_id, email FROM contacts ORDER BY account_id"))
    accounts = conn.execute(text("SELECT id, email FROM accounts ORDER BY id"))
    assert copied.all() == accounts.all()
    # What is about to happen, then progress per revision, on stderr.
    assert "upgrade alembic.ini on database" in upgraded.err
    assert "a1 -> d4" in upgraded.err
    assert "upgrade a1 -> b2: contacts: one per account" in upgraded.err
    assert "copy_emails: moved 3" in upgraded.err
    # The summary on stdout: one row per operation, with its counts.
    assert "a1 -> d4" in upgraded.out
    row = next(line for line in upgraded.out.splitlines() if "copy_emails" in line)
    assert row.split()[:7] == ["contacts", "copy_emails", "3", "0", "0", "0", "0"]

    current = lossless("current")
    assert (current.code, current.out.strip()) == (0, "d4 (head)")

    downgraded = lossless("downgrade", "a1", "--json")
    assert downgraded.code == 0, downgraded
    report = json.loads(downgraded.out)
    assert (report["before"], report["after"], report["lost"]) == (["d4"], ["a1"], 0)
    assert [(o["table"], o["operation"], o["counts"]) for o in report["operations"]] == [
        ("contacts", "drop_contacts", {"dropped": 3, "lost": 0})
    ]
    assert revision_of(conn) == ["a1"]
    assert not inspect(conn).has_table("contacts")
    assert {c["name"] for c in inspect(conn).get_columns("accounts")} == {"id", "email"}

    # Alembic's relative revision, typed as a DBA types it (not taken for an option).
    relative = lossless("downgrade", "-1")
    assert relative.code == 0, relative
    assert "a1 -> base" in relative.out
    assert revision_of(conn) == []
    assert not inspect(conn).has_table("accounts")


def test_a_failing_revision_leaves_the_last_good_one(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection
) -> None:
    migrate_to("a1")
    _add_accounts(conn, "same@example.org", "same@example.org")

    failed = lossless("upgrade", "head")

    line = assert_one_error(failed, 1, "upgrade b2 -> c3", "uq_accounts_email")
    assert "the database is at b2" in line
    # b2 committed on its own; c3 left nothing behind.
    assert revision_of(conn) == ["b2"]
    assert conn.execute(text("SELECT count(*) FROM contacts")).scalar_one() == 2
    assert "verified" not in {c["name"] for c in inspect(conn).get_columns("accounts")}
    assert lossless("current").out.strip() == "b2\nnot at head: head is d4"


def test_a_refused_operation_changes_nothing(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection
) -> None:
    migrate_to("a1")
    _add_accounts(conn, "ada@example.org", "", "")

    refused = lossless("upgrade")

    line = assert_one_error(refused, 1, "refused: accounts.email: 2 row(s) have an empty email")
    assert "(e.g. 2, 3)" in line
    assert "the database is at a1" in refused.err
    assert revision_of(conn) == ["a1"]
    assert not inspect(conn).has_table("contacts")


def test_timeouts_are_set_on_the_migration_session(lossless: Lossless, conn: Connection) -> None:
    done = lossless("--lock-timeout", "3s", "--statement-timeout", "2min", "upgrade")
    assert done.code == 0, done
    seen = conn.execute(text("SELECT * FROM migration_session")).one()
    assert tuple(seen) == ("3s", "2min", "lossless upgrade")


def test_a_busy_table_fails_after_the_lock_timeout(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection, lossless_engine: Engine
) -> None:
    migrate_to("b2")
    with lossless_engine.connect() as reader:
        # A long read transaction, as a report query would hold: ALTER TABLE must wait.
        reader.execute(text("SELECT count(*) FROM accounts")).scalar_one()
        blocked = lossless("--lock-timeout", "500ms", "upgrade")
        reader.rollback()

    line = assert_one_error(blocked, 2, "upgrade b2 -> c3", "--lock-timeout 0.5s")
    assert "the database is at b2" in line
    assert revision_of(conn) == ["b2"]
    assert lossless("upgrade").code == 0
    assert revision_of(conn) == ["d4"]


def test_unknown_revision_is_a_usage_error(lossless: Lossless, conn: Connection) -> None:
    outcome = lossless("upgrade", "zz9")
    assert_one_error(outcome, 2, "unknown revision 'zz9'")
    assert outcome.out == ""
    assert revision_of(conn) == []


def test_a_bundled_scenario_preflight_upgrade_downgrade(seeded_database: str) -> None:
    scenario = get_scenario(SCENARIO)
    args = ("-s", scenario.name, "--url", seeded_database)

    preview = run_lossless(*args, "preflight", "--json")
    assert preview.code == 0, preview
    report = json.loads(preview.out)
    assert report["after"] == [scenario.after]
    moved = [o["counts"]["moved"] for o in report["operations"] if "moved" in o["counts"]]
    # every target's goal and sprint, into their junctions
    assert moved == [SEEDED_TARGETS, SEEDED_TARGETS]

    upgraded = run_lossless(*args, "upgrade")
    assert upgraded.code == 0, upgraded
    assert f"{scenario.before} -> {scenario.after}" in upgraded.out
    with engine_on(seeded_database) as engine, engine.connect() as conn:
        assert revision_of(conn) == [scenario.after]
        links = conn.execute(text("SELECT count(*) FROM target_goal_links")).scalar_one()
        assert links == SEEDED_TARGETS

    back = run_lossless(*args, "downgrade", scenario.before, "--json")
    assert back.code == 0, back
    assert json.loads(back.out)["lost"] == 0
    with engine_on(seeded_database) as engine, engine.connect() as conn:
        assert revision_of(conn) == [scenario.before]
        assert not inspect(conn).has_table("target_goal_links")
