"""What the seeder's data lets a project round trip catch: rows a dedupe deletes, losses in
tables that later revisions create (also on a clone of a database)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from tests.roundtrip.test_project_roundtrip import (
    ROWS,
    Query,
    changed_table,
    only_step,
    project,
    seeded,
    write_project,
)
from toolkit import migrate
from toolkit.postgres import Server
from toolkit.postgres.url import database_name, sqlalchemy_url
from toolkit.roundtrip import run_project_roundtrip

__all__ = ["seeded"]  # the module-scoped fixture counting rows of the seeded start


def test_deleting_duplicates_before_adding_unique_is_caught(
    lossless_server: Server, seeded: Query
) -> None:
    report = run_project_roundtrip(project("dedupe_unique"), lossless_server.url, rows=ROWS)

    assert [s.name for s in report.steps if not s.ok] == ["0002_unique_tag_names"]
    changes = changed_table(only_step(report, "0002_unique_tag_names"))
    repeated = seeded("SELECT count(*) - count(DISTINCT name) FROM tags")
    assert repeated > 0
    assert (changes.table, changes.rows_before, changes.vanished) == ("tags", ROWS, repeated)
    assert changes.rows_after == ROWS - repeated


LATER_TABLE = {
    "r1_items": (
        None,
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)",
        "DROP TABLE items",
    ),
    "r2_audit": (
        "r1_items",
        "CREATE TABLE audit (id int PRIMARY KEY, item_id int REFERENCES items (id), note text)",
        "DROP TABLE audit",
    ),
    "r3_drop_note": (
        "r2_audit",
        "ALTER TABLE audit DROP COLUMN note",
        "ALTER TABLE audit ADD COLUMN note text",
    ),
}


def test_a_table_a_later_revision_creates_is_seeded_on_the_ladder(
    lossless_server: Server, tmp_path: Path
) -> None:
    report = run_project_roundtrip(
        write_project(tmp_path, LATER_TABLE), lossless_server.url, rows=9
    )

    assert [s.name for s in report.steps if not s.ok] == ["r3_drop_note"]
    (column,) = changed_table(only_step(report, "r3_drop_note")).columns
    assert column.column == "note" and column.rows > 0


def test_a_table_a_later_revision_creates_is_seeded_on_a_clone(
    lossless_server: Server, lossless_database: str, tmp_path: Path
) -> None:
    later = write_project(tmp_path, LATER_TABLE)
    migrate.upgrade(later, lossless_database, "r1_items")
    engine = create_engine(sqlalchemy_url(lossless_database), poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5) g"
        )
    engine.dispose()

    report = run_project_roundtrip(
        later, lossless_server.url, rows=9, template=database_name(lossless_database)
    )

    assert [(s.name, s.status) for s in report.steps] == [
        ("r2_audit", "ok"),
        ("r3_drop_note", "FAILED"),
    ]
    step = only_step(report, "r3_drop_note")
    assert step.notes[0] == "seeded 9 rows in 1 table: audit 9"
    changes = changed_table(step)
    assert (changes.table, changes.rows_before) == ("audit", 9)
    assert [c.column for c in changes.columns] == ["note"]
