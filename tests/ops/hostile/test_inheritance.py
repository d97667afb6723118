"""Inherited and partitioned tables: each table's own rows (``ONLY``) come back."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.ops.hostile.harness import (
    DROPPING,
    assert_exact,
    assert_refused,
    exact,
    round_trip,
    setup,
)
from toolkit.ops import StashColumnInJsonbOp

#: archived_sprints inherits sprints; its ids overlap the parent's.
CHILD = """
CREATE TABLE archived_sprints () INHERITS (sprints);
INSERT INTO archived_sprints (id, goal_id, title, metadata)
SELECT id, goal_id, 'archived ' || title,
       CASE WHEN metadata IS NULL THEN '{}'::jsonb END FROM ONLY sprints;
"""


@pytest.mark.xfail(strict=True, reason="UPDATE without ONLY; NULL marks keyed by primary key only")
def test_stash_on_a_parent_with_overlapping_child_ids(lossless_engine: Engine) -> None:
    setup(lossless_engine, CHILD)

    assert_exact(lossless_engine, StashColumnInJsonbOp("sprints", "title", jsonb_column="metadata"))


@pytest.mark.xfail(strict=True, reason="promote crashes with a foreign-key violation")
def test_promote_on_an_inherited_table_is_refused(lossless_engine: Engine) -> None:
    setup(lossless_engine, CHILD)

    assert_refused(lossless_engine, DROPPING["promote"](), "archived_sprints")


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

    before, after = round_trip(
        lossless_engine, StashColumnInJsonbOp("sprints", "goal_id", jsonb_column="metadata")
    )
    differences = exact(before, after)
    if differences and lossless_engine.dialect.server_version_info >= (18,):
        # PostgreSQL 18 records NOT NULL as a named constraint. Here the original one is
        # named sprints_goal_id_not_null1 (the renamed old table held the plain name when it
        # was made); the restored column gets the default name. Only that may differ.
        assert all("_not_null" in line for line in differences), differences
        pytest.xfail("PostgreSQL 18: the restored NOT NULL constraint gets the default name")
    assert differences == []
