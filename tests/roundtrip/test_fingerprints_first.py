"""A project step is first judged on fingerprints; rows are copied aside only to name a difference.

The first run of a step snapshots S0 without copying its rows. When S2's snapshot differs
from S0's in some table, the step runs once more from the same start (a new clone of the
same ladder, seeded the same way) with S0's rows copied aside, and the rows behind the
difference are named as before. A step whose second run does not repeat the first run's
difference keeps the first run's verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from toolkit.migrate import Project
from toolkit.postgres import Server, drop_database, with_database
from toolkit.postgres.url import sqlalchemy_url
from toolkit.roundtrip import RoundTripReport, run_project_roundtrip
from toolkit.roundtrip.project import NOT_REPEATABLE
from toolkit.verify import SIDE_SCHEMA

PROJECTS = Path(__file__).resolve().parent.parent / "projects"
ROWS = 20

#: A revision whose downgrade deletes a tag on its first run only (a marker file says so).
FLAKY_REVISION = '''"""a downgrade that loses a tag the first time only"""
from pathlib import Path

from alembic import op

revision = "0002_flaky"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

MARKER = Path(__file__).resolve().parent / "downgraded once"


def upgrade() -> None:
    op.execute("COMMENT ON TABLE tags IS 'flaky'")


def downgrade() -> None:
    op.execute("COMMENT ON TABLE tags IS NULL")
    if not MARKER.exists():
        MARKER.write_text("yes")
        op.execute("DELETE FROM tags WHERE id = (SELECT min(id) FROM tags)")
'''

#: The [alembic] section of a project that shares the faithful one's env.py and first revision.
FLAKY_INI = """[alembic]
script_location = {faithful}/migrations
version_locations = {faithful}/migrations/versions {versions}
path_separator = space
sqlalchemy.url = driver://user:pass@localhost/dbname

"""


def kept_databases(report: RoundTripReport) -> list[str]:
    prefix = "kept scratch database "
    return [n.removeprefix(prefix) for n in report.notes if n.startswith(prefix)]


@pytest.fixture
def kept_run(lossless_server: Server) -> Iterator[RoundTripReport]:
    """The round trip of ``dropped_row`` with every scratch database kept (dropped after)."""
    project = Project.from_ini(PROJECTS / "dropped_row" / "alembic.ini")
    report = run_project_roundtrip(project, lossless_server.url, rows=ROWS, keep=True)
    try:
        yield report
    finally:
        for name in kept_databases(report):
            drop_database(lossless_server.url, name)


def side_tables(server_url: str, name: str) -> list[str]:
    engine = create_engine(sqlalchemy_url(with_database(server_url, name)), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            query = text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relkind = 'r' ORDER BY 1"
            )
            return list(conn.execute(query, {"schema": SIDE_SCHEMA}).scalars())
    finally:
        engine.dispose()


def test_rows_are_copied_aside_only_for_the_step_whose_fingerprints_differ(
    lossless_server: Server, kept_run: RoundTripReport
) -> None:
    names = kept_databases(kept_run)
    steps = [n for n in names if n.startswith("lossless_roundtrip_")]
    # one database per step (0001_initial, 0006_tags_to_labels), and a second one for
    # 0006_tags_to_labels, whose downgrade loses rows
    assert [s.name for s in kept_run.steps] == ["0001_initial", "0006_tags_to_labels"]
    assert len(steps) == 3
    copied = {n: side_tables(lossless_server.url, n) for n in steps}
    assert copied[steps[0]] == []
    assert copied[steps[1]] == []
    assert {t.split("_")[0] for t in copied[steps[2]]} == {"s0", "s2"}


def test_the_difference_is_still_named_row_by_row(kept_run: RoundTripReport) -> None:
    step = kept_run.steps[1]
    (changes,) = [r for r in step.rows if not r.ok]
    assert changes.table == "tags"
    assert changes.vanished is not None and changes.vanished > 0
    assert changes.samples and all(s.startswith("id=") for s in changes.samples)
    assert NOT_REPEATABLE not in step.notes


def test_a_difference_the_second_run_does_not_repeat_still_fails_the_step(
    lossless_server: Server, tmp_path: Path
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0002_flaky.py").write_text(FLAKY_REVISION)
    ini = tmp_path / "alembic.ini"
    logging = (PROJECTS / "dropped_row" / "alembic.ini").read_text().split("[loggers]", 1)[1]
    ini.write_text(
        FLAKY_INI.format(faithful=PROJECTS / "faithful", versions=versions) + "[loggers]" + logging
    )

    report = run_project_roundtrip(Project.from_ini(ini), lossless_server.url, rows=ROWS)

    assert (versions / "downgraded once").exists()
    assert not report.ok
    step = next(s for s in report.steps if s.name == "0002_flaky")
    assert NOT_REPEATABLE in step.notes
    assert step.rows == ()
    assert f"data of tags: {ROWS} rows before, {ROWS - 1} after" in step.problems
