"""preflight: the real step on the real data, reported, then rolled back."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Connection, inspect, text

from tests.cli.conftest import Lossless, MigrateTo, assert_one_error, run_lossless
from tests.cli.project import OWN_CONNECTION_ENV_PY, write_project


def _state(conn: Connection) -> tuple[object, ...]:
    """Revision, tables and every row: what a rolled-back preflight must leave as it was."""
    tables = tuple(sorted(inspect(conn).get_table_names()))
    version = tuple(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    accounts = tuple(conn.execute(text("SELECT * FROM accounts ORDER BY id")).all())
    contacts = (
        tuple(conn.execute(text("SELECT * FROM contacts ORDER BY id")).all())
        if "contacts" in tables
        else ()
    )
    return version, tables, accounts, contacts


def test_preflight_upgrade_counts_and_changes_nothing(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection
) -> None:
    migrate_to("a1")
    conn.execute(
        text("INSERT INTO accounts (email) SELECT 'user' || g FROM generate_series(1, 5) g")
    )
    before = _state(conn)

    outcome = lossless("preflight")

    assert outcome.code == 0, outcome
    assert _state(conn) == before
    assert "rolled back: nothing changed" in outcome.out
    row = next(line for line in outcome.out.splitlines() if "copy_emails" in line)
    assert row.split()[:7] == ["contacts", "copy_emails", "5", "0", "0", "0", "0"]
    assert outcome.out.strip().endswith("verdict: ok: would reach d4 and lose nothing")
    assert "rolled back: the database is unchanged" in outcome.err

    machine = json.loads(lossless("preflight", "c3", "--json").out)
    assert (machine["ok"], machine["direction"], machine["after"]) == (True, "upgrade", ["c3"])
    assert [o["counts"] for o in machine["operations"]] == [{"moved": 5}]
    assert _state(conn) == before


def test_preflight_downgrade_shows_the_declared_loss(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection
) -> None:
    migrate_to("a1")
    conn.execute(text("INSERT INTO accounts (email) VALUES ('ada@example.org')"))
    migrate_to("heads")
    # A contact the old schema cannot hold: the downgrade declares it lost.
    conn.execute(text("INSERT INTO contacts (account_id, email) VALUES (1, 'ada@work.example')"))
    before = _state(conn)

    outcome = lossless("preflight", "a1", "--json")

    assert outcome.code == 1, outcome
    report = json.loads(outcome.out)
    assert (report["ok"], report["direction"], report["lost"]) == (False, "downgrade", 1)
    assert [(o["operation"], o["revision"], o["counts"]) for o in report["operations"]] == [
        ("drop_contacts", "b2", {"dropped": 2, "lost": 1})
    ]
    assert _state(conn) == before
    text_report = lossless("preflight", "a1")
    assert text_report.code == 1
    assert "verdict: DATA WOULD BE LOST: 1 row(s)" in text_report.out


def test_preflight_reports_a_refusal_as_a_row(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection
) -> None:
    migrate_to("a1")
    conn.execute(text("INSERT INTO accounts (email) VALUES ('ada@example.org'), ('')"))
    before = _state(conn)

    outcome = lossless("preflight")

    assert outcome.code == 1, outcome
    refused = next(line for line in outcome.out.splitlines() if line.startswith("accounts.email"))
    assert refused.split()[:2] == ["accounts.email", "refused"]
    assert refused.split()[-3:] == ["1", "-", "-"]
    assert "verdict: REFUSED: refused: accounts.email: 1 row(s) have an empty email (e.g. 2)" in (
        outcome.out
    )
    assert _state(conn) == before


def test_preflight_reports_a_revision_that_would_fail(
    migrate_to: MigrateTo, lossless: Lossless, conn: Connection
) -> None:
    migrate_to("a1")
    conn.execute(text("INSERT INTO accounts (email) VALUES ('twin'), ('twin')"))
    before = _state(conn)

    outcome = lossless("preflight", "--json")

    assert outcome.code == 1, outcome
    report = json.loads(outcome.out)
    assert report["failure"].startswith("upgrade b2 -> c3 would fail: could not create unique")
    assert [o["counts"] for o in report["operations"]] == [{"moved": 2}]
    assert _state(conn) == before


def test_preflight_refuses_an_env_py_that_would_commit(
    tmp_path: Path, lossless_database: str, conn: Connection
) -> None:
    ini = write_project(tmp_path / "own", env_py=OWN_CONNECTION_ENV_PY)

    outcome = run_lossless("-c", str(ini), "--url", lossless_database, "preflight")

    assert_one_error(
        outcome, 2, "env.py line", "refused, preflight runs on the connection it gives env.py"
    )
    assert inspect(conn).get_table_names() == []
    # The same env.py is fine for a real upgrade: it connects to the URL it is given.
    upgraded = run_lossless("-c", str(ini), "--url", lossless_database, "upgrade", "a1")
    assert upgraded.code == 0, upgraded
    assert sorted(inspect(conn).get_table_names()) == ["accounts", "alembic_version"]
