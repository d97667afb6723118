"""A plain Alembic project (``alembic init``, env.py untouched, no toolkit import) gets the
operations through the ``alembic.plugins`` entry point, offline and online."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import Connection

from tests.ops.helpers import execute, rows
from toolkit.postgres.url import sqlalchemy_url

REVISION = '''"""stash a column"""
from alembic import op

revision = "0000000000a1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.stash_column_in_jsonb("t", "v", primary_key="id")


def downgrade():
    op.restore_column_from_jsonb("t", "v", type_="integer", primary_key="id")
'''


def alembic(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(project / "alembic.ini"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def make_project(tmp_path: Path, url: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    done = alembic(project, "init", "migrations")
    assert done.returncode == 0, done.stderr
    ini = project / "alembic.ini"
    text = ini.read_text().replace(
        "sqlalchemy.url = driver://user:pass@localhost/dbname",
        "sqlalchemy.url = " + url.replace("%", "%%"),
    )
    ini.write_text(text)
    assert "toolkit" not in (project / "migrations" / "env.py").read_text()
    (project / "migrations" / "versions" / "0000000000a1_stash.py").write_text(REVISION)
    return project


def test_plain_alembic_project_runs_the_operations(
    tmp_path: Path, conn: Connection, lossless_database: str
) -> None:
    url = sqlalchemy_url(lossless_database).render_as_string(hide_password=False)
    project = make_project(tmp_path, url)
    execute(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, v int, metadata jsonb);"
        " INSERT INTO t VALUES (1, 5, NULL), (2, NULL, '{}')",
    )

    offline = alembic(project, "upgrade", "head", "--sql")
    assert offline.returncode == 0, offline.stderr
    assert "UPDATE t AS t SET metadata = COALESCE(t.metadata, '{}'::jsonb)" in offline.stdout

    online = alembic(project, "upgrade", "head")
    assert online.returncode == 0, online.stderr
    assert rows(conn, "SELECT id, metadata::text FROM t ORDER BY id") == [
        (1, '{"legacy_v": 5}'),
        (2, "{}"),
    ]
    back = alembic(project, "downgrade", "base")
    assert back.returncode == 0, back.stderr
    assert rows(conn, "SELECT id, v, metadata FROM t ORDER BY id") == [(1, 5, None), (2, None, {})]
