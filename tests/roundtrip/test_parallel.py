"""Steps shared out between worker processes give the report one process gives.

Each worker walks a ladder of its own and checks every other revision (``Share``); the
steps are merged back in history order. Compared here field by field (all but the time)
with the same project checked in one process: verdicts, losses, named rows, notes, and the
steps a failed upgrade blocks. A set-up error in a worker is raised as such in the caller.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bench.bench_project_roundtrip import write_project
from toolkit.guard import ForeignDatabaseError
from toolkit.migrate import Project
from toolkit.postgres import Server, with_database
from toolkit.roundtrip import RoundTripReport, StepReport, run_project_roundtrip
from toolkit.roundtrip.parallel import Share, default_jobs

PROJECTS = Path(__file__).resolve().parent.parent / "projects"
#: The name of a ladder database (random) in a message.
LADDER = re.compile(r"lossless_ladder_[0-9a-f]+")

REVISION = '''"""{name}"""
from alembic import op

revision = "{name}"
down_revision = {parent!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute({up!r})


def downgrade() -> None:
    op.execute({down!r})
'''

INI = """[alembic]
script_location = {here}
sqlalchemy.url = driver://user:pass@localhost/dbname
"""

ENV_PY = "from toolkit.alembic_env import run_migrations\n\nrun_migrations()\n"


def timeless(report: RoundTripReport) -> list[StepReport]:
    return [replace(s, seconds=0.0) for s in report.steps]


def test_each_worker_takes_every_other_revision_and_stops_after_its_last() -> None:
    first, second = Share(0, 2, 5), Share(1, 2, 5)

    assert [first(k) for k in range(6)] == [True, False, True, False, True, None]
    assert [second(k) for k in range(6)] == [False, True, False, True, None, None]
    assert [Share(2, 3, 2)(k) for k in range(2)] == [None, None]


def test_small_projects_run_in_one_process() -> None:
    assert default_jobs(5) == 1


def test_two_workers_report_what_one_process_reports(
    lossless_server: Server, tmp_path: Path
) -> None:
    # creates, adds, alters, renames, backfills, indexes, drops and dedupes (allowed losses);
    # over 8 tables r12 alters t007.name again, and its downgrade makes it text, not the
    # varchar(400) of r04: a failed step
    ini = write_project(tmp_path, lossless_server.url, 12, 8)
    project = Project.from_ini(ini)

    alone = run_project_roundtrip(project, lossless_server.url, rows=30, jobs=1)
    shared = run_project_roundtrip(project, lossless_server.url, rows=30, jobs=2)

    assert [s.name for s in alone.steps if not s.ok] == ["r12"]
    assert [s.name for s in shared.steps] == [f"r{k:02d}" for k in range(1, 13)]
    assert timeless(shared) == timeless(alone)
    lost = [(s.name, loss.table, loss.found) for s in shared.steps for loss in s.losses]
    assert [name for name, _, found in lost if found] == ["r08", "r09"]
    assert (shared.server, shared.notes) == (alone.server, alone.notes)


def test_a_failed_upgrade_blocks_the_same_steps_in_every_worker(
    lossless_server: Server, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "env.py").write_text(ENV_PY)
    parent = None
    for n in range(1, 7):
        up = "SELECT 1 / 0" if n == 3 else f"CREATE TABLE t{n} (id int PRIMARY KEY)"
        down = f"DROP TABLE IF EXISTS t{n}"
        text = REVISION.format(name=f"r{n}", parent=parent, up=up, down=down)
        (migrations / "versions" / f"r{n}.py").write_text(text)
        parent = f"r{n}"
    ini = tmp_path / "alembic.ini"
    ini.write_text(INI.format(here=migrations))
    project = Project.from_ini(ini)

    alone = run_project_roundtrip(project, lossless_server.url, rows=5, jobs=1)
    shared = run_project_roundtrip(project, lossless_server.url, rows=5, jobs=2)

    assert [s.status for s in shared.steps] == [
        "ok",
        "ok",
        "ERROR",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert shared.steps[3].skipped == "its ancestor r3 could not be upgraded"
    assert "division by zero" in (shared.steps[2].error or "")
    assert timeless(shared) == timeless(alone)


def test_a_set_up_error_in_a_worker_is_raised_as_such(
    lossless_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = with_database(lossless_server.url, "the_apps_own_database")
    monkeypatch.setenv("APP_DATABASE_URL", app)
    project = Project.from_ini(PROJECTS / "app_url_from_env" / "alembic.ini")

    with pytest.raises(ForeignDatabaseError) as alone:
        run_project_roundtrip(project, lossless_server.url, rows=5, jobs=1)
    with pytest.raises(ForeignDatabaseError) as shared:
        run_project_roundtrip(project, lossless_server.url, rows=5, jobs=2)

    assert "the_apps_own_database" in str(shared.value)
    assert LADDER.sub("ladder", str(shared.value)) == LADDER.sub("ladder", str(alone.value))
