"""Data a team supplies: SQL files and Python callables run before or after a revision,
read from ``[tool.lossless]`` or alembic.ini ``[lossless]``, honoured by the round trip, the
CLI and the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.roundtrip.test_project_roundtrip import PROJECTS, only_step, write_project
from toolkit.errors import UsageError
from toolkit.migrate import Project
from toolkit.postgres import Server
from toolkit.roundtrip import RoundTripSettings, load_settings, run_project_roundtrip

#: r2 makes ``a.b`` NOT NULL: synthetic rows (NULL now and then) make its upgrade fail;
#: r3 deletes the rows whose ``b`` is 42, which only a team's data has.
REVISIONS: dict[str, tuple[str | tuple[str, str] | None, str, str]] = {
    "r1_table": (None, "CREATE TABLE a (id int PRIMARY KEY, b int)", "DROP TABLE a"),
    "r2_not_null": (
        "r1_table",
        "ALTER TABLE a ALTER COLUMN b SET NOT NULL",
        "ALTER TABLE a ALTER COLUMN b DROP NOT NULL",
    ),
    "r3_purge": ("r2_not_null", "DELETE FROM a WHERE b = 42", "SELECT 1"),
}
FILL_SQL = "UPDATE a SET b = 0 WHERE b IS NULL;\n-- a percent sign: 100%\n"
ANSWER_PY = (
    "from sqlalchemy import text\n\n\n"
    "def answer(conn):\n"
    '    conn.execute(text("INSERT INTO a (id, b) VALUES (-1, 42), (-2, 42)"))\n'
)


def make_project(folder: Path, settings: str, *, ini: str = "") -> Project:
    write_project(folder, REVISIONS)
    (folder / "fill.sql").write_text(FILL_SQL)
    (folder / "team_data.py").write_text(ANSWER_PY)
    (folder / "pyproject.toml").write_text(settings)
    if ini:
        with (folder / "alembic.ini").open("a") as f:
            f.write(ini)
    return Project.from_ini(folder / "alembic.ini")


PYPROJECT = """
[tool.lossless]

[[tool.lossless.data_hooks]]
revision = "r2_not_null"
when = "before"
sql = "fill.sql"

[[tool.lossless.data_hooks]]
revision = "r2_not_null"
when = "after"
call = "team_data:answer"
"""

INI = """
[lossless]
data_hooks =
    before r2_not_null: fill.sql
    after r2_not_null: team_data:answer
"""


def test_without_hooks_synthetic_data_breaks_the_not_null_step(
    lossless_server: Server, tmp_path: Path
) -> None:
    report = run_project_roundtrip(make_project(tmp_path, ""), lossless_server.url, rows=10)

    assert [s.status for s in report.steps] == ["ok", "ERROR", "ok"]


@pytest.mark.parametrize(("pyproject", "ini"), [(PYPROJECT, ""), ("", INI)])
def test_hooks_feed_the_steps_they_name(
    lossless_server: Server, tmp_path: Path, pyproject: str, ini: str
) -> None:
    report = run_project_roundtrip(
        make_project(tmp_path, pyproject, ini=ini), lossless_server.url, rows=10
    )

    assert [s.status for s in report.steps] == ["ok", "ok", "FAILED"]
    assert "data hook before r2_not_null: fill.sql" in only_step(report, "r2_not_null").notes
    purge = only_step(report, "r3_purge")
    assert "data hook after r2_not_null: team_data:answer" in purge.notes
    (changes,) = purge.rows
    assert (changes.table, changes.vanished, changes.samples) == ("a", 2, ("id=-2", "id=-1"))


def test_hooks_run_on_a_clone_too(
    lossless_server: Server, lossless_database: str, tmp_path: Path
) -> None:
    from toolkit import migrate
    from toolkit.postgres.url import database_name

    project = make_project(tmp_path, PYPROJECT)
    migrate.upgrade(project, lossless_database, "r1_table")

    report = run_project_roundtrip(
        project, lossless_server.url, rows=10, template=database_name(lossless_database)
    )

    assert [(s.name, s.status) for s in report.steps] == [
        ("r2_not_null", "ok"),
        ("r3_purge", "FAILED"),
    ]
    assert only_step(report, "r3_purge").rows[0].vanished == 2


def test_a_failing_hook_is_the_steps_error(lossless_server: Server, tmp_path: Path) -> None:
    project = make_project(tmp_path, PYPROJECT)
    (tmp_path / "fill.sql").write_text("UPDATE a SET nope = 1;")

    report = run_project_roundtrip(project, lossless_server.url, rows=5)

    step = only_step(report, "r2_not_null")
    assert step.status == "ERROR"
    assert step.error == (
        "data hook before r2_not_null: fill.sql (pyproject.toml [tool.lossless]) failed: "
        'column "nope" of relation "a" does not exist'
    )


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (
            'revision = "r2_not_null"\nwhen = "before"\nsql = "missing.sql"',
            "pyproject.toml [tool.lossless]: data hook before r2_not_null: no SQL file "
            "'missing.sql'",
        ),
        (
            'revision = "r2_not_null"\nwhen = "before"\ncall = "no_such_module:f"',
            "pyproject.toml [tool.lossless]: data hook no_such_module:f: cannot import "
            "'no_such_module' (ModuleNotFoundError: No module named 'no_such_module')",
        ),
        (
            'revision = "r2_not_null"\nwhen = "before"\ncall = "team_data:nothing"',
            "pyproject.toml [tool.lossless]: data hook team_data:nothing: no function 'nothing'",
        ),
        (
            'revision = "r2_not_null"\nwhen = "during"\nsql = "fill.sql"',
            "pyproject.toml [tool.lossless]: a data hook runs 'before' or 'after' a revision, "
            "not 'during'",
        ),
        (
            'revision = "r9"\nwhen = "before"\nsql = "fill.sql"',
            "unknown revision 'r9'",
        ),
    ],
)
def test_bad_hooks_are_refused_before_anything_runs(
    tmp_path: Path, hook: str, message: str
) -> None:
    project = make_project(tmp_path, f"[[tool.lossless.data_hooks]]\n{hook}\n")

    with pytest.raises(UsageError) as caught:
        load_settings(project)

    assert message in str(caught.value)


def test_the_cli_honours_hooks(lossless_server: Server, tmp_path: Path) -> None:
    make_project(tmp_path, PYPROJECT)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit.cli",
            "-c",
            str(tmp_path / "alembic.ini"),
            "--url",
            lossless_server.url,
            "roundtrip",
            "--rows",
            "10",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "r3_purge" in done.stdout and "2 vanished" in done.stdout


def test_the_plugins_built_in_test_honours_hooks(
    pytester: pytest.Pytester, lossless_server: Server
) -> None:
    (pytester.path / "proj").mkdir()
    make_project(pytester.path / "proj", PYPROJECT)
    pytester.makeini(
        f"""
        [pytest]
        lossless_roundtrip = true
        lossless_alembic_ini = {pytester.path / "proj" / "alembic.ini"}
        lossless_roundtrip_rows = 6
        """
    )

    result = pytester.runpytest_subprocess("--lossless-url", lossless_server.url)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*r3_purge*", "*2 vanished*"])
    assert not [line for line in result.stdout.lines if "ERROR" in line]


def test_the_documented_sample_project_passes_thanks_to_its_hooks(
    lossless_server: Server,
) -> None:
    sample = Project.from_ini(PROJECTS / "data_hooks" / "alembic.ini")

    report = run_project_roundtrip(sample, lossless_server.url, rows=30)
    bare = run_project_roundtrip(sample, lossless_server.url, rows=30, settings=RoundTripSettings())

    assert report.ok, report.render()
    assert only_step(report, "0002_due_required").notes[1:] == (
        "data hook after 0001_initial: teamdata.notes:add",
        "data hook before 0002_due_required: teamdata/fill_due.sql",
    )
    assert [s.status for s in bare.steps] == ["ok", "ERROR"]
