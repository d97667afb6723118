"""Round trips of whole Alembic projects (tests/projects/), made like ``alembic init`` makes them.

``faithful`` is an unmodified ``alembic init`` project whose six revisions are correct;
every other case carries one of its refactors done wrong. Expected counts are computed here
from a database seeded the same way (the seeder is deterministic), not taken from the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from toolkit import migrate
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import database_name, sqlalchemy_url
from toolkit.roundtrip import (
    AllowedLoss,
    RoundTripReport,
    RoundTripSettings,
    StepReport,
    run_project_roundtrip,
)
from toolkit.seeding import seed_database
from toolkit.verify import RowChanges

PROJECTS = Path(__file__).resolve().parent.parent / "projects"
FAITHFUL = PROJECTS / "faithful" / "alembic.ini"
REVISIONS = [
    "0001_initial",
    "0002_move_body",
    "0003_metadata_table",
    "0004_author_name_index",
    "0005_rating_percent",
    "0006_tags_to_labels",
]
ROWS = 20

#: Runs a query on the seeded starting point of the steps; returns its single value.
Query = Callable[[str], Any]


def project(case: str) -> Project:
    return Project.from_ini(PROJECTS / case / "alembic.ini")


def only_step(report: RoundTripReport, revision: str) -> StepReport:
    return next(s for s in report.steps if s.name == revision)


def changed_table(step: StepReport) -> RowChanges:
    (changes,) = [r for r in step.rows if not r.ok]
    return changes


@pytest.fixture(scope="module")
def seeded(lossless_server: Server) -> Iterator[Query]:
    """Count rows in the data every step starts from: 0001_initial, seeded like the steps."""
    with scratch_database(lossless_server.url, prefix="lossless_test") as url:
        migrate.upgrade(Project.from_ini(FAITHFUL), url, "0001_initial")
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        with engine.connect() as conn:
            seed_database(conn, rows=ROWS, seed=0)
            conn.commit()

            def query(sql: str) -> Any:
                return conn.exec_driver_sql(sql).scalar_one()

            yield query
        engine.dispose()


@pytest.fixture(scope="module")
def faithful(lossless_server: Server) -> RoundTripReport:
    return run_project_roundtrip(Project.from_ini(FAITHFUL), lossless_server.url, rows=ROWS)


def test_the_faithful_project_passes(faithful: RoundTripReport) -> None:
    assert faithful.ok, faithful.render()
    assert [s.name for s in faithful.steps] == REVISIONS
    assert faithful.steps[1].revision == "0001_initial -> 0002_move_body"
    assert all(s.diff is not None and s.diff.ok for s in faithful.steps)
    assert faithful.subject == "faithful/alembic.ini"


def test_each_step_starts_from_seeded_rows(faithful: RoundTripReport, seeded: Query) -> None:
    notes = only_step(faithful, "0002_move_body").notes
    assert notes[0] == (
        f"seeded {3 * ROWS} rows in 3 tables: authors {ROWS}, notes {ROWS}, tags {ROWS}"
    )
    assert seeded("SELECT count(*) FROM notes") == ROWS
    later = only_step(faithful, "0006_tags_to_labels").notes[0]
    assert "note_bodies 20" in later and "note_metadata 20" in later


@pytest.mark.parametrize(
    ("case", "revision", "column", "expected"),
    [
        (
            "forgot_copy_back",
            "0002_move_body",
            "body",
            "SELECT count(*) FROM notes WHERE body IS NOT NULL",
        ),
        (
            "null_to_empty_object",
            "0003_metadata_table",
            "metadata",
            "SELECT count(*) FROM notes WHERE metadata IS NULL",
        ),
        (
            "changed_value",
            "0005_rating_percent",
            "rating",
            "SELECT count(*) FROM notes WHERE rating <> trunc(rating)",
        ),
    ],
)
def test_a_column_that_did_not_come_back_is_caught(
    lossless_server: Server, seeded: Query, case: str, revision: str, column: str, expected: str
) -> None:
    report = run_project_roundtrip(project(case), lossless_server.url, rows=ROWS)

    assert not report.ok
    assert [s.name for s in report.steps if not s.ok] == [revision]
    changes = changed_table(only_step(report, revision))
    count = seeded(expected)
    assert count > 0
    assert (changes.table, changes.not_restored, changes.vanished) == ("notes", count, 0)
    assert [(c.column, c.rows) for c in changes.columns] == [(column, count)]
    (loss,) = only_step(report, revision).losses
    assert (loss.table, loss.column, loss.found, loss.declared) == ("notes", column, count, False)
    failures = report.render_failures()
    assert f" revision {revision} (0001_initial -> {revision}) " in failures
    assert f"column notes.{column} changed in {count} row(s)" in failures


def test_null_turned_into_empty_object_shows_the_values(lossless_server: Server) -> None:
    report = run_project_roundtrip(project("null_to_empty_object"), lossless_server.url, rows=ROWS)

    (column,) = changed_table(only_step(report, "0003_metadata_table")).columns
    assert {(s.before, s.after) for s in column.samples} == {("null", "{}")}


def test_a_dropped_row_is_caught(lossless_server: Server, seeded: Query) -> None:
    report = run_project_roundtrip(project("dropped_row"), lossless_server.url, rows=ROWS)

    assert [s.name for s in report.steps if not s.ok] == ["0006_tags_to_labels"]
    changes = changed_table(only_step(report, "0006_tags_to_labels"))
    missing = seeded("SELECT count(*) FROM tags WHERE color IS NULL")
    assert missing > 0
    assert (changes.table, changes.rows_before, changes.rows_after) == (
        "tags",
        ROWS,
        ROWS - missing,
    )
    assert (changes.vanished, changes.appeared, changes.changed) == (missing, 0, 0)
    ids = seeded("SELECT array_agg(id ORDER BY id) FROM tags WHERE color IS NULL")
    assert changes.samples == tuple(f"id={i}" for i in ids[:3])


def test_a_dropped_constraint_is_caught(lossless_server: Server) -> None:
    report = run_project_roundtrip(project("dropped_constraint"), lossless_server.url, rows=ROWS)

    step = only_step(report, "0004_author_name_index")
    assert [s.name for s in report.steps if not s.ok] == ["0004_author_name_index"]
    assert step.problems == (
        "constraint authors.authors_name_key missing (was UNIQUE (name))",
        "index authors.authors_name_key missing "
        "(was CREATE UNIQUE INDEX authors_name_key ON public.authors USING btree (name))",
    )


def test_an_allowed_loss_passes_and_shows_its_reason(
    lossless_server: Server, seeded: Query
) -> None:
    reason = "bodies are archived elsewhere before this release"
    settings = RoundTripSettings(
        allowed_losses=(AllowedLoss("0002_move_body", "notes", reason, column="body"),)
    )

    report = run_project_roundtrip(
        project("forgot_copy_back"), lossless_server.url, rows=ROWS, settings=settings
    )

    assert report.ok, report.render()
    (loss,) = only_step(report, "0002_move_body").losses
    count = seeded("SELECT count(*) FROM notes WHERE body IS NOT NULL")
    assert (loss.where, loss.declared, loss.found, loss.reason) == (
        "notes.body",
        True,
        count,
        reason,
    )
    assert f"notes.body: {reason}" in report.render()


def test_an_allowance_for_another_column_does_not_cover_the_loss(lossless_server: Server) -> None:
    settings = RoundTripSettings(
        allowed_losses=(AllowedLoss("0002_move_body", "notes", "titles are regenerated", "title"),)
    )

    report = run_project_roundtrip(
        project("forgot_copy_back"), lossless_server.url, rows=ROWS, settings=settings
    )

    assert not report.ok
    losses = {(x.where, x.declared) for x in only_step(report, "0002_move_body").losses}
    assert losses == {("notes.body", False), ("notes.title", True)}


def test_an_excluded_revision_is_skipped(lossless_server: Server) -> None:
    settings = RoundTripSettings(exclude_revisions=frozenset({"0002_move_body"}))

    report = run_project_roundtrip(
        project("forgot_copy_back"), lossless_server.url, rows=ROWS, settings=settings
    )

    assert report.ok
    assert only_step(report, "0002_move_body").skipped == "excluded by configuration"


def test_settings_in_alembic_ini_are_read(lossless_server: Server, tmp_path: Path) -> None:
    ini = (PROJECTS / "forgot_copy_back" / "alembic.ini").read_text()
    here = str(PROJECTS / "forgot_copy_back")
    (tmp_path / "alembic.ini").write_text(
        ini.replace("%(here)s", here)
        + "\n[lossless]\nallowed_losses =\n    0002_move_body notes.body: moved to S3 in 2023\n"
    )

    report = run_project_roundtrip(
        Project.from_ini(tmp_path / "alembic.ini"), lossless_server.url, rows=ROWS
    )

    assert report.ok, report.render()
    assert report.notes == ("settings from alembic.ini [lossless]",)
    assert only_step(report, "0002_move_body").losses[0].reason == "moved to S3 in 2023"


def test_a_clone_checks_the_pending_revisions_on_its_data(
    lossless_server: Server, lossless_database: str
) -> None:
    broken = project("forgot_copy_back")
    migrate.upgrade(broken, lossless_database, "0001_initial")
    engine = create_engine(sqlalchemy_url(lossless_database), poolclass=NullPool)
    with engine.connect() as conn:
        seed_database(conn, rows=7, seed=5)
        conn.commit()
        bodies = conn.exec_driver_sql("SELECT count(*) FROM notes WHERE body IS NOT NULL").scalar()
    engine.dispose()

    report = run_project_roundtrip(
        broken, lossless_server.url, rows=0, template=database_name(lossless_database)
    )

    assert [s.name for s in report.steps] == ["0002_move_body"]
    changes = changed_table(report.steps[0])
    assert (changes.not_restored, changes.columns[0].column) == (bodies, "body")
    assert migrate.current(broken, lossless_database) == ("0001_initial",)


def test_report_renders_and_serialises(faithful: RoundTripReport) -> None:
    text = faithful.render()
    data = json.loads(json.dumps(faithful.to_json()))

    assert text.splitlines()[0] == "round trip of project faithful/alembic.ini: OK"
    assert all(name in text for name in REVISIONS)
    assert [s["name"] for s in data["steps"]] == REVISIONS
    assert data["ok"] is True and data["kind"] == "project"


REVISION = '''
"""{name}"""
from alembic import op

revision = "{name}"
down_revision = {parents}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute({up})


def downgrade() -> None:
    op.execute({down})
'''


def write_project(
    folder: Path, revisions: dict[str, tuple[str | tuple[str, str] | None, str, str]]
) -> Project:
    """A project over the faithful project's ``env.py`` with the given (parents, up, down)."""
    versions = folder / "versions"
    versions.mkdir()
    for name, (parents, up, down) in revisions.items():
        (versions / f"{name}.py").write_text(
            REVISION.format(name=name, parents=repr(parents), up=repr(up), down=repr(down))
        )
    ini = (PROJECTS / "forgot_copy_back" / "alembic.ini").read_text()
    ini = ini.replace("%(here)s/../faithful/migrations/versions %(here)s/versions", str(versions))
    (folder / "alembic.ini").write_text(ini.replace("%(here)s/..", str(PROJECTS)))
    return Project.from_ini(folder / "alembic.ini")


def test_a_revision_that_fails_on_data_is_an_error(lossless_server: Server, tmp_path: Path) -> None:
    broken = write_project(
        tmp_path,
        {
            "r1_table": (None, "CREATE TABLE a (id int PRIMARY KEY)", "DROP TABLE a"),
            "r2_not_null": ("r1_table", "ALTER TABLE a ADD COLUMN b int NOT NULL", "SELECT 1"),
            "r3_index": ("r2_not_null", "CREATE INDEX ix_a ON a (id)", "DROP INDEX ix_a"),
        },
    )

    report = run_project_roundtrip(broken, lossless_server.url, rows=3)

    assert [s.status for s in report.steps] == ["ok", "ERROR", "ok"]
    error = only_step(report, "r2_not_null").error
    assert error is not None and error.startswith("upgrade: ")
    assert 'column "b" of relation "a" contains null values' in error


def test_branches_and_merges_are_stepped_through(lossless_server: Server, tmp_path: Path) -> None:
    revisions: dict[str, tuple[str | tuple[str, str] | None, str, str]] = {
        "r1_base": (
            None,
            "CREATE TABLE a (id int PRIMARY KEY, x text NOT NULL DEFAULT '')",
            "DROP TABLE a",
        ),
        "r2_left": ("r1_base", "ALTER TABLE a ADD COLUMN y int", "ALTER TABLE a DROP COLUMN y"),
        "r3_right": ("r1_base", "CREATE TABLE b (id int PRIMARY KEY)", "DROP TABLE b"),
        "r4_merge": (("r2_left", "r3_right"), "SELECT 1", "SELECT 1"),
        "r5_lossy": (
            "r4_merge",
            "ALTER TABLE a DROP COLUMN x",
            "ALTER TABLE a ADD COLUMN x text NOT NULL DEFAULT ''",
        ),
    }

    report = run_project_roundtrip(write_project(tmp_path, revisions), lossless_server.url)

    assert {s.name for s in report.steps} == set(revisions)
    assert [s.name for s in report.steps if not s.ok] == ["r5_lossy"]
    (column,) = changed_table(only_step(report, "r5_lossy")).columns
    assert (column.column, column.rows) == ("x", 20)
