"""Naming the rows behind a data difference: captures kept in the database, compared there."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from toolkit.verify import (
    SIDE_SCHEMA,
    RowCapture,
    RowChanges,
    capture_rows,
    compare_rows,
    drop_capture,
    take_snapshot,
)

STORED = text("SELECT count(*) FROM pg_tables WHERE schemaname = :schema")

SCHEMA = """
CREATE TABLE notes (id int PRIMARY KEY, body text, metadata jsonb, rating numeric(4, 1));
INSERT INTO notes
SELECT i, 'body ' || i, CASE WHEN mod(i, 4) = 0 THEN NULL ELSE '{"k": 1}'::jsonb END, i / 2.0
FROM generate_series(1, 20) AS i;
CREATE TABLE pairs (a int NOT NULL, b int NOT NULL, label text, UNIQUE (a, b));
INSERT INTO pairs SELECT i, i + 1, 'pair ' || i FROM generate_series(1, 5) AS i;
CREATE TABLE logs (line text);
INSERT INTO logs VALUES ('one'), ('two'), ('two');
"""


@pytest.fixture
def db(conn: Connection) -> Connection:
    conn.exec_driver_sql(SCHEMA)
    return conn


def changes_after(db: Connection, before: RowCapture, table: str) -> RowChanges:
    """How ``table`` changed since ``before``, capturing the current rows."""
    (found,) = compare_rows(db, before, capture_rows(db, "after"), tables=[table])
    return found


def test_identical_captures_have_no_changes(db: Connection) -> None:
    before = capture_rows(db, "before")
    after = capture_rows(db, "after")

    found = compare_rows(db, before, after)
    assert [c.table for c in found] == ["logs", "notes", "pairs"]
    assert all(c.ok for c in found)
    assert [t.rows for t in before.tables] == [3, 20, 5]


def test_captures_live_in_the_side_schema_and_snapshots_ignore_them(db: Connection) -> None:
    snap = take_snapshot(db)
    capture = capture_rows(db, "s0")

    assert db.execute(STORED, {"schema": SIDE_SCHEMA}).scalar_one() == 3
    assert take_snapshot(db) == snap
    drop_capture(db, capture)
    assert db.execute(STORED, {"schema": SIDE_SCHEMA}).scalar_one() == 0


def test_a_column_not_copied_back_is_named_with_counts_and_samples(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("UPDATE notes SET body = NULL WHERE id <= 12")

    found = changes_after(db, before, "notes")
    assert (found.not_restored, found.unexpected) == (12, 12)
    assert (found.vanished, found.appeared, found.changed) == (0, 0, 12)
    (column,) = found.columns
    assert (column.column, column.rows) == ("body", 12)
    assert [(s.key, s.before, s.after) for s in column.samples] == [
        ("id=1", '"body 1"', "null"),
        ("id=2", '"body 2"', "null"),
        ("id=3", '"body 3"', "null"),
    ]
    assert found.samples == ("id=1", "id=2", "id=3")


def test_null_turned_into_empty_object_shows_both_values(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("UPDATE notes SET metadata = '{}' WHERE metadata IS NULL")

    found = changes_after(db, before, "notes")
    (column,) = found.columns
    assert (column.column, column.rows) == ("metadata", 5)
    assert [(s.key, s.before, s.after) for s in column.samples] == [
        ("id=4", "null", "{}"),
        ("id=8", "null", "{}"),
        ("id=12", "null", "{}"),
    ]


def test_vanished_and_appeared_rows_by_key(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("DELETE FROM notes WHERE id IN (3, 7); INSERT INTO notes (id) VALUES (99)")

    found = changes_after(db, before, "notes")
    assert (found.rows_before, found.rows_after) == (20, 19)
    assert (found.not_restored, found.unexpected) == (2, 1)
    assert (found.vanished, found.appeared, found.changed) == (2, 1, 0)
    assert found.samples == ("id=3", "id=7", "id=99")


def test_a_dropped_column_shows_as_absent(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("ALTER TABLE notes DROP COLUMN rating")

    found = changes_after(db, before, "notes")
    (column,) = found.columns
    assert (column.column, column.rows) == ("rating", 20)
    assert column.samples[0].after == "(no such column)"


def test_composite_unique_key_identifies_rows(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("UPDATE pairs SET label = upper(label) WHERE a = 2")

    found = changes_after(db, before, "pairs")
    assert found.key_columns == ("a", "b")
    assert found.samples == ("(a=2, b=3)",)
    assert found.columns[0].samples[0].after == '"PAIR 2"'


def test_without_a_key_rows_are_counted_as_a_multiset(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql(
        "DELETE FROM logs WHERE ctid = (SELECT min(ctid) FROM logs WHERE line = 'two')"
    )

    found = changes_after(db, before, "logs")
    assert found.key_columns == ()
    assert (found.not_restored, found.unexpected) == (1, 0)
    assert found.vanished is None
    assert found.samples == ('{"line": "two"}',)


def test_excluded_columns_are_not_compared(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("UPDATE notes SET rating = 0")

    (found,) = compare_rows(
        db,
        before,
        capture_rows(db, "after"),
        exclude_columns={"notes": ["rating"]},
        tables=["notes"],
    )
    assert found.ok


def test_regenerated_keys_fall_back_to_fingerprints(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql(
        "UPDATE notes SET id = id + 100 WHERE id > 18; DELETE FROM notes WHERE id = 1"
    )

    (found,) = compare_rows(
        db, before, capture_rows(db, "after"), exclude_columns={"notes": ["id"]}, tables=["notes"]
    )
    # Keyed on an excluded column, rows are matched by content: only the deleted one is lost.
    assert (found.not_restored, found.unexpected) == (1, 0)
    assert found.vanished is None
    assert found.samples == ('{"body": "body 1", "rating": 0.5, "metadata": {"k": 1}}',)


def test_a_missing_table_loses_all_its_rows(db: Connection) -> None:
    before = capture_rows(db, "before")
    db.exec_driver_sql("DROP TABLE logs")

    found = {c.table: c for c in compare_rows(db, before, capture_rows(db, "after"))}
    assert (found["logs"].not_restored, found["logs"].note) == (3, "table missing")
