"""Inherited and partitioned tables: each table's own rows (``ONLY``) come back."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine

from tests.ops.hostile.harness import (
    DROPPING,
    assert_exact,
    assert_refused,
    exact,
    run,
    run_offline,
    setup,
    take,
)
from toolkit.ops import StashColumnInJsonbOp

#: archived_sprints inherits sprints; its ids overlap the parent's.
CHILD = """
CREATE TABLE archived_sprints () INHERITS (sprints);
INSERT INTO archived_sprints (id, goal_id, title, metadata)
SELECT id, goal_id, 'archived ' || title,
       CASE WHEN metadata IS NULL THEN '{}'::jsonb END FROM ONLY sprints;
"""


REMEDY = "detach the children"


def test_stash_on_a_parent_with_overlapping_child_ids_is_refused(lossless_engine: Engine) -> None:
    """The parent's UPDATE and DROP COLUMN reach the child, whose ids overlap the parent's:
    refused up front, naming the child and the remedy (docs/operations.md)."""
    setup(lossless_engine, CHILD)

    assert_refused(
        lossless_engine,
        StashColumnInJsonbOp("sprints", "title", jsonb_column="metadata"),
        f"inheritance child archived_sprints.*{REMEDY}",
    )


@pytest.mark.parametrize("operation", list(DROPPING))
def test_every_operation_on_an_inheritance_parent_is_refused(
    lossless_engine: Engine, operation: str
) -> None:
    setup(lossless_engine, CHILD)

    assert_refused(lossless_engine, DROPPING[operation](), "archived_sprints")


def test_restore_into_an_inheritance_parent_is_refused(lossless_engine: Engine) -> None:
    """Stashed before the child existed: the restore would add the column to the child too."""
    setup(lossless_engine)
    run(lossless_engine, DROPPING["stash"]())
    with lossless_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE archived_sprints () INHERITS (sprints)")

    assert_refused(lossless_engine, DROPPING["stash"]().reverse(), "archived_sprints")


def test_an_inherited_column_of_a_child_is_refused(lossless_engine: Engine) -> None:
    """PostgreSQL cannot drop an inherited column: refused before the values move."""
    setup(lossless_engine, CHILD, "ALTER TABLE archived_sprints ADD PRIMARY KEY (id)")

    assert_refused(
        lossless_engine,
        StashColumnInJsonbOp("archived_sprints", "goal_id", jsonb_column="metadata"),
        "column inherited from sprints",
    )


def test_a_childs_own_column_round_trips_exactly(lossless_engine: Engine) -> None:
    """A child without children of its own, and a column only it has: exact."""
    setup(
        lossless_engine,
        CHILD,
        "ALTER TABLE archived_sprints ADD PRIMARY KEY (id), ADD COLUMN note text;"
        " UPDATE archived_sprints SET note = 'kept ' || title WHERE metadata IS NULL",
    )

    assert_exact(
        lossless_engine, StashColumnInJsonbOp("archived_sprints", "note", jsonb_column="metadata")
    )


def test_offline_guard_refuses_an_inheritance_parent(lossless_engine: Engine) -> None:
    setup(lossless_engine, CHILD)
    before = take(lossless_engine)

    with pytest.raises(psycopg.errors.CheckViolation, match="inheritance child archived_sprints"):
        run_offline(
            lossless_engine,
            lambda op: op.stash_column_in_jsonb("sprints", "title", primary_key="id"),
        )
    assert exact(before, take(lossless_engine)) == []


PARTITIONED = """
DROP TABLE tasks;
ALTER TABLE sprints RENAME TO sprints_old;
CREATE TABLE sprints (
    id uuid NOT NULL, goal_id uuid NOT NULL REFERENCES goals (id), title text NOT NULL,
    metadata jsonb, created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00',
    PRIMARY KEY (id, title)) PARTITION BY LIST (title);
CREATE TABLE sprints_low PARTITION OF sprints FOR VALUES IN ('sprint 1', 'sprint 2');
CREATE TABLE sprints_rest PARTITION OF sprints DEFAULT;
INSERT INTO sprints SELECT * FROM sprints_old;
DROP TABLE sprints_old;
"""


def test_stash_on_a_partitioned_table(lossless_engine: Engine) -> None:
    setup(lossless_engine, PARTITIONED)

    assert_exact(
        lossless_engine, StashColumnInJsonbOp("sprints", "goal_id", jsonb_column="metadata")
    )
