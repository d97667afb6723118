"""A small Alembic project whose downgrade restores two columns from one JSONB, for the
tests of ``restore_column_from_jsonb`` in online mode (ops and CLI).

Revision ``r1`` makes ``items`` (its ``goal_id`` with a foreign key, a partial index, a
comment and a statistics target; its ``code`` NOT NULL with a default, a UNIQUE and a CHECK
constraint and a column grant) and ``goals``; ``r2`` stashes both columns into
``items.metadata``, and its downgrade restores them (from the stash's record) in one
``run_lossless``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from toolkit.migrate import Project

R1 = "a1f0000000r1"
R2 = "a1f0000000r2"

_ENV = "from toolkit.alembic_env import run_migrations\n\nrun_migrations()\n"
_INI = "[alembic]\nscript_location = %(here)s/migrations\n"
_R1 = f'''"""items and goals"""

from toolkit.op import op

revision = "{R1}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE goals (id int PRIMARY KEY)")
    op.execute(
        "CREATE TABLE items (id int PRIMARY KEY,"
        " goal_id int REFERENCES goals (id) ON DELETE SET NULL,"
        " code text NOT NULL DEFAULT 'none' CONSTRAINT items_code_key UNIQUE"
        " CONSTRAINT items_code_check CHECK (length(code) < 40), metadata jsonb)"
    )
    op.execute("CREATE INDEX items_goal_partial ON items (goal_id) WHERE goal_id > 2")
    op.execute("COMMENT ON COLUMN items.goal_id IS 'the goal'")
    op.execute("ALTER TABLE items ALTER COLUMN goal_id SET STATISTICS 321")
    op.execute("GRANT SELECT (code) ON items TO PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE items")
    op.execute("DROP TABLE goals")
'''
_R2 = f'''"""items.goal_id and items.code into items.metadata"""

from toolkit.op import op
from toolkit.ops import StashColumnInJsonbOp

revision = "{R2}"
down_revision = "{R1}"
branch_labels = None
depends_on = None

STASHES = (
    StashColumnInJsonbOp("items", "goal_id", key="legacy_goal_id"),
    StashColumnInJsonbOp("items", "code", key="legacy_code"),
)


def upgrade() -> None:
    op.run_lossless(*STASHES)


def downgrade() -> None:
    op.run_lossless(*(s.reverse() for s in reversed(STASHES)))
'''


def write_project(root: Path) -> Path:
    """Write the project under ``root``; returns its ``alembic.ini``."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(_ENV)
    (versions / "r1_items.py").write_text(_R1)
    (versions / "r2_stash.py").write_text(_R2)
    ini = root / "alembic.ini"
    ini.write_text(_INI)
    return ini


def project(ini: Path) -> Project:
    return Project.from_ini(ini)


def seed(conn: Connection, rows: int) -> None:
    """Goals 1-5; ``rows`` items: every fourth without a goal, metadata NULL, ``{}`` or
    ``{"n": i}`` in turn (NULL metadata comes back NULL only through the stash's marks)."""
    conn.execute(text("INSERT INTO goals SELECT g FROM generate_series(1, 5) g"))
    conn.execute(
        text(
            "INSERT INTO items (id, goal_id, code, metadata)"
            " SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE i % 5 + 1 END, 'c' || i,"
            " CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '{}'::jsonb"
            " ELSE jsonb_build_object('n', i) END FROM generate_series(1, :rows) i"
        ),
        {"rows": rows},
    )
