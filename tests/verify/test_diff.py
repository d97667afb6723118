"""diff(a, b) is a pure function: these tests build snapshots by hand, no database."""

from __future__ import annotations

import dataclasses

from toolkit.verify import (
    Column,
    Constraint,
    DataDifference,
    Definition,
    SchemaDifference,
    SequenceSnapshot,
    Snapshot,
    TableSnapshot,
    diff,
)

NOTES = TableSnapshot(
    name="notes",
    columns=frozenset(
        {
            Column("id", "bigint", True, identity="always"),
            Column("body", "text", False),
            Column("metadata", "jsonb", False),
        }
    ),
    constraints=(Constraint("notes_pkey", "primary key", "PRIMARY KEY (id)"),),
    indexes=(Definition("notes_pkey", "CREATE UNIQUE INDEX notes_pkey ON public.notes (id)"),),
    rows=20,
    fingerprint=123,
)
BASE = Snapshot(
    schema="public",
    tables=(NOTES,),
    sequences=(SequenceSnapshot("notes_id_seq", "bigint", 1, 1, 1, 2**63 - 1, False, "notes.id"),),
)


def with_notes(**changes: object) -> Snapshot:
    return dataclasses.replace(BASE, tables=(dataclasses.replace(NOTES, **changes),))  # type: ignore[arg-type]


def test_equal_snapshots_have_no_difference() -> None:
    same = Snapshot.from_json(BASE.to_json())

    result = diff(BASE, same)
    assert result.ok
    assert result.render() == "no differences"
    assert result.to_json() == {"ok": True, "differences": [], "notices": []}


def at_position(snapshot: Snapshot, last_value: int | None) -> Snapshot:
    sequence = dataclasses.replace(snapshot.sequences[0], last_value=last_value)
    return dataclasses.replace(snapshot, sequences=(sequence,))


def test_a_sequence_moving_forward_is_no_difference() -> None:
    assert diff(BASE, at_position(BASE, 99)).ok
    assert diff(at_position(BASE, 20), at_position(BASE, 99)).ok


def test_a_sequence_moving_back_is_a_difference() -> None:
    found = diff(at_position(BASE, 20), at_position(BASE, None))

    assert [d.describe() for d in found.differences] == [
        "sequence notes_id_seq changed: position 20 -> position reset"
    ]
    assert not diff(at_position(BASE, 20), at_position(BASE, 3)).ok


def test_a_missing_column_is_named_with_its_definition() -> None:
    columns = frozenset(c for c in NOTES.columns if c.name != "body")

    result = diff(BASE, with_notes(columns=columns))
    assert result.differences == (
        SchemaDifference("column", "missing", "body", "notes", before="text"),
    )
    assert result.render() == "column notes.body missing (was text)"
    assert result.tables() == ("notes",)


def test_a_changed_column_shows_before_and_after() -> None:
    columns = frozenset(
        Column("metadata", "jsonb", False, default="'{}'::jsonb") if c.name == "metadata" else c
        for c in NOTES.columns
    )

    (only,) = diff(BASE, with_notes(columns=columns)).differences
    assert only.describe() == "column notes.metadata changed: jsonb -> jsonb DEFAULT '{}'::jsonb"


def test_column_order_is_not_part_of_equality() -> None:
    reordered = frozenset(sorted(NOTES.columns, key=lambda c: c.name, reverse=True))

    assert diff(BASE, with_notes(columns=reordered)).ok


def test_constraints_compare_by_name_and_definition() -> None:
    renamed = (Constraint("notes_pk", "primary key", "PRIMARY KEY (id)"),)
    redefined = (Constraint("notes_pkey", "primary key", "PRIMARY KEY (id, body)"),)

    found = diff(BASE, with_notes(constraints=renamed)).differences
    assert [(d.name, d.change) for d in found] == [("notes_pk", "added"), ("notes_pkey", "missing")]
    (changed,) = diff(BASE, with_notes(constraints=redefined)).differences
    assert changed.describe() == (
        "constraint notes.notes_pkey changed: PRIMARY KEY (id) -> PRIMARY KEY (id, body)"
    )


def test_data_differences_give_both_row_counts() -> None:
    fewer = diff(BASE, with_notes(rows=19, fingerprint=99))
    other = diff(BASE, with_notes(fingerprint=99))

    assert fewer.data_differences == (DataDifference("notes", 20, 19),)
    assert fewer.render() == "data of notes: 20 rows before, 19 after"
    assert other.render() == "data of notes: 20 rows, but their content differs"


def test_fingerprints_over_different_columns_are_not_compared_silently() -> None:
    result = diff(BASE, with_notes(excluded_columns=("body",)))

    (only,) = result.differences
    assert isinstance(only, DataDifference)
    assert "leave out different columns (none vs body)" in only.describe()


def test_a_missing_table_is_one_difference() -> None:
    result = diff(BASE, dataclasses.replace(BASE, tables=()))

    assert result.differences == (
        SchemaDifference("table", "missing", "notes", None, before="3 columns, 20 rows"),
    )
    assert result.to_json()["differences"][0] == {
        "type": "schema",
        "kind": "table",
        "change": "missing",
        "table": None,
        "name": "notes",
        "before": "3 columns, 20 rows",
        "after": None,
    }
