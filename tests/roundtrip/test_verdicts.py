"""Verdicts of the project round trip on the traps of tests/projects/: no false OK.

A step whose changed tables had no rows is untested (and fails the run unless allowed), the
version table must say what each step reached, renumbered keys are named as such, and an
exception of a revision's own code is reported with its file and line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from toolkit.errors import UsageError
from toolkit.migrate import Project
from toolkit.postgres import Server
from toolkit.roundtrip import RoundTripReport, RoundTripSettings, StepReport, run_project_roundtrip
from toolkit.roundtrip.dropped import rollback_differences
from toolkit.verify import take_snapshot

PROJECTS = Path(__file__).resolve().parent.parent / "projects"
ROWS = 20


def project(case: str) -> Project:
    return Project.from_ini(PROJECTS / case / "alembic.ini")


def step(report: RoundTripReport, name: str) -> StepReport:
    return next(s for s in report.steps if s.name == name)


@pytest.fixture(scope="module")
def untested(lossless_server: Server) -> RoundTripReport:
    return run_project_roundtrip(project("untested_step"), lossless_server.url, rows=ROWS)


def test_a_step_on_an_empty_table_is_untested_and_fails_the_run(untested: RoundTripReport) -> None:
    lowered = step(untested, "0003_lower_codes")

    assert "codes 0" in lowered.notes[0]  # the seeder could fill no row of codes
    assert lowered.ok and lowered.status == "UNTESTED"
    assert lowered.untested == ("codes had no rows",)
    assert lowered.changed_tables == ("codes",)
    assert not untested.ok
    assert untested.coverage == (
        "0 of 3 steps tested with data, 1 untested, 2 changed no table that existed before"
    )
    assert any("untested: codes had no rows" in p for p in untested.problems)
    text = untested.render()
    row = next(line for line in text.splitlines() if line.startswith("0003_lower_codes "))
    assert row.endswith("UNTESTED  untested: codes had no rows")
    assert untested.to_json()["untested"] == ["0003_lower_codes"]


def test_untested_steps_can_be_allowed(lossless_server: Server) -> None:
    report = run_project_roundtrip(
        project("untested_step"),
        lossless_server.url,
        rows=ROWS,
        settings=RoundTripSettings(allow_untested_steps=True),
    )

    assert report.ok, report.render()
    assert step(report, "0003_lower_codes").status == "UNTESTED"
    assert "1 untested (allowed by allow_untested_steps)" in report.coverage


def test_a_step_on_tables_with_rows_is_tested_with_data(lossless_server: Server) -> None:
    report = run_project_roundtrip(project("team_version"), lossless_server.url, rows=ROWS)

    assert report.ok, report.render()
    bio = step(report, "0002_author_bio")
    assert bio.changed_tables == ("authors",) and bio.tested_with_data
    assert (
        report.coverage == "1 of 2 steps tested with data, 1 changed no table that existed before"
    )


def test_the_version_table_must_say_what_the_step_reached(lossless_server: Server) -> None:
    report = run_project_roundtrip(project("version_mismatch"), lossless_server.url, rows=ROWS)

    stray = step(report, "0002_stray_version_row")
    assert stray.status == "ERROR"
    assert stray.error is not None
    assert stray.error.startswith(
        "downgrade: after the downgrade, the version table alembic_version"
    )
    assert "0001_stray" in stray.error and stray.error.endswith("expected 0001_initial")
    assert not report.ok


def test_renumbered_primary_keys_are_named(lossless_server: Server) -> None:
    report = run_project_roundtrip(project("renumbered_keys"), lossless_server.url, rows=ROWS)

    moved = step(report, "0002_tags_to_labels")
    assert moved.status == "FAILED"
    (tags,) = [r for r in moved.rows if not r.ok]
    assert tags.table == "tags" and tags.not_restored > 0
    assert (
        f"primary keys not preserved: {tags.not_restored} of {tags.rows_before} rows came back "
        "with other id values"
    ) in tags.note
    assert any("primary keys not preserved" in p for p in moved.problems)


def test_an_exception_of_a_revision_is_named_with_file_and_line(
    lossless_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKFILL_BATCH_SIZE", raising=False)

    report = run_project_roundtrip(project("revision_raises"), lossless_server.url, rows=ROWS)

    failed = step(report, "0002_batched_backfill")
    assert failed.status == "ERROR"
    assert failed.error is not None
    assert failed.error.startswith(
        "upgrade: revision 0002_batched_backfill failed in its own code: "
    )
    assert "0002_batched_backfill.py line 16 raised KeyError: 'BACKFILL_BATCH_SIZE'" in (
        failed.error
    )


def test_versions_set_by_env_py_are_round_tripped(lossless_server: Server) -> None:
    runtime = project("runtime_versions")
    report = run_project_roundtrip(runtime, lossless_server.url, rows=ROWS)

    assert [s.name for s in report.steps] == [
        "0001_initial",
        "0002_move_body",
        "0003_metadata_table",
        "0004_author_name_index",
        "0005_rating_percent",
        "0006_tags_to_labels",
    ]
    assert report.ok, report.render()
    assert report.coverage.startswith("5 of 6 steps tested with data")


def test_a_project_without_revisions_is_refused() -> None:
    with pytest.raises(UsageError, match="no revisions found"):
        project("no_revisions")


def test_the_rollback_proof_names_what_changed(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE kept (id int PRIMARY KEY)"))
    conn.commit()
    before = take_snapshot(conn)
    assert rollback_differences(conn, before, ()) == []

    conn.execute(text("INSERT INTO kept VALUES (1)"))
    conn.commit()

    assert rollback_differences(conn, before, ()) == ["data of kept: 0 rows before, 1 after"]
