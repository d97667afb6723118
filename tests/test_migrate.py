"""The Alembic glue: configs for script directories and alembic.ini projects, revision checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from toolkit import migrate
from toolkit.errors import UsageError
from toolkit.migrate import Project

ENV_PY = "from toolkit.alembic_env import run_migrations\n\nrun_migrations()\n"


def _revision(rev: str, down: str | None, up: str, downgrade: str) -> str:
    return textwrap.dedent(
        f'''\
        """step {rev}"""
        from alembic import op
        import sqlalchemy as sa

        revision = "{rev}"
        down_revision = {down!r}
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
            {up}


        def downgrade() -> None:
            {downgrade}
        '''
    )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    versions = tmp_path / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "env.py").write_text(ENV_PY)
    (versions / "a1.py").write_text(
        _revision(
            "a1",
            None,
            'op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("t")',
        )
    )
    (versions / "b2.py").write_text(
        _revision(
            "b2",
            "a1",
            'op.add_column("t", sa.Column("name", sa.Text))',
            'op.drop_column("t", "name")',
        )
    )
    return Project(label="tiny", script_location=tmp_path)


def test_upgrade_downgrade_current(
    project: Project, lossless_database: str, lossless_engine: Engine
) -> None:
    assert migrate.current(project, lossless_database) == ()
    migrate.upgrade(project, lossless_database, "heads")
    assert migrate.current(project, lossless_database) == ("b2",)
    columns = {c["name"] for c in inspect(lossless_engine).get_columns("t")}
    assert columns == {"id", "name"}
    migrate.downgrade(project, lossless_database, "a1")
    assert migrate.current(project, lossless_database) == ("a1",)
    lossless_engine.dispose()
    assert {c["name"] for c in inspect(lossless_engine).get_columns("t")} == {"id"}


def test_history_is_base_first(project: Project) -> None:
    steps = migrate.history(project)
    assert [(s.revision, s.down_revision, s.message) for s in steps] == [
        ("a1", (), "step a1"),
        ("b2", ("a1",), "step b2"),
    ]


def test_unknown_revision_is_a_usage_error(project: Project, lossless_database: str) -> None:
    with pytest.raises(UsageError, match="unknown revision 'zz9'"):
        migrate.upgrade(project, lossless_database, "zz9")
    assert migrate.current(project, lossless_database) == ()


def test_offline_sql_up_and_down(project: Project) -> None:
    up = migrate.offline_sql(project, "base:b2")
    assert "CREATE TABLE t" in up
    assert "ALTER TABLE t ADD COLUMN name TEXT" in up
    down = migrate.offline_sql(project, "b2:a1")
    assert "ALTER TABLE t DROP COLUMN name" in down
    assert "CREATE TABLE" not in down


def test_offline_sql_needs_a_range(project: Project) -> None:
    with pytest.raises(UsageError, match="expected FROM:TO"):
        migrate.offline_sql(project, "b2")


def test_alembic_ini_project(tmp_path: Path, project: Project, lossless_database: str) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {project.script_location}\n")
    team = Project.from_ini(ini)
    migrate.upgrade(team, lossless_database, "a1")
    assert migrate.current(team, lossless_database) == ("a1",)


def test_missing_ini_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such Alembic config file"):
        Project.from_ini(tmp_path / "nope.ini")


def test_password_with_percent_survives_configparser(project: Project) -> None:
    cfg = project.config("postgresql://u:p%25w@h/db")
    assert cfg.get_main_option("sqlalchemy.url") == "postgresql+psycopg://u:p%25w@h/db"
