"""What cannot come back exactly is refused before anything changes, naming the object.

Each case used to end in a PostgreSQL error after the data copy, or worse, in silence.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.ops.hostile.harness import DROPPING, MOVE_TO_PARENT, assert_refused, setup
from toolkit.ops import MoveFkToChildOp, StashColumnInJsonbOp

#: name -> (SQL creating an object that uses sprints.goal_id, what the refusal names)
DEPENDENTS = {
    "view": ("CREATE VIEW sprint_goals_v AS SELECT id, goal_id FROM sprints", "sprint_goals_v"),
    "UPDATE OF trigger": (
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
        " CREATE TRIGGER tr_goal_changed BEFORE UPDATE OF goal_id ON sprints"
        " FOR EACH ROW EXECUTE FUNCTION noop()",
        "tr_goal_changed",
    ),
    "generated column": (
        "ALTER TABLE sprints ADD COLUMN goal_text text GENERATED ALWAYS AS (goal_id::text) STORED",
        "goal_text",
    ),
    "policy": (
        "ALTER TABLE sprints ENABLE ROW LEVEL SECURITY;"
        " CREATE POLICY by_goal ON sprints USING (goal_id IS NOT NULL)",
        "by_goal",
    ),
    "composite foreign key": (
        "ALTER TABLE sprints ADD CONSTRAINT uq_sprint_goal UNIQUE (id, goal_id);"
        " ALTER TABLE tasks ADD COLUMN sprint_goal uuid;"
        " UPDATE tasks t SET sprint_goal = s.goal_id FROM sprints s WHERE s.id = t.sprint_id;"
        " ALTER TABLE tasks ADD CONSTRAINT fk_task_sprint_goal"
        " FOREIGN KEY (sprint_id, sprint_goal)"
        " REFERENCES sprints (id, goal_id)",
        "fk_task_sprint_goal|uq_sprint_goal",
    ),
    "materialized view": (
        "CREATE MATERIALIZED VIEW sprint_goals_m AS SELECT goal_id FROM sprints",
        "sprint_goals_m",
    ),
    "rule": (
        "CREATE TABLE sprint_log (goal_id uuid);"
        " CREATE RULE log_goal AS ON UPDATE TO sprints DO ALSO"
        " INSERT INTO sprint_log VALUES (OLD.goal_id)",
        "log_goal",
    ),
}


def cases() -> list[object]:
    return [
        pytest.param(name, operation, id=f"{operation}-{name}")
        for name in DEPENDENTS
        for operation in DROPPING
    ]


@pytest.mark.parametrize(("dependent", "operation"), cases())
def test_dependent_objects_are_refused(
    lossless_engine: Engine, dependent: str, operation: str
) -> None:
    sql, names = DEPENDENTS[dependent]
    setup(lossless_engine, sql)

    assert_refused(lossless_engine, DROPPING[operation](), names)


def test_a_primary_key_column_is_refused(lossless_engine: Engine) -> None:
    setup(
        lossless_engine,
        "ALTER TABLE sprints DROP CONSTRAINT sprints_pkey CASCADE;"
        " ALTER TABLE sprints ADD PRIMARY KEY (id, goal_id)",
    )

    assert_refused(
        lossless_engine,
        StashColumnInJsonbOp("sprints", "goal_id", jsonb_column="metadata"),
        "primary key",
    )


@pytest.mark.xfail(strict=True, reason="NotNullViolation after the copy")
def test_children_without_parent_are_refused(lossless_engine: Engine) -> None:
    setup(
        lossless_engine,
        "ALTER TABLE tasks ALTER sprint_id DROP NOT NULL;"
        " UPDATE tasks SET sprint_id = NULL WHERE title = 'task 3'",
    )

    assert_refused(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id"),
        "tasks.*sprint_id.*1",
    )


@pytest.mark.xfail(strict=True, reason="ForeignKeyViolation after the copy")
def test_not_valid_foreign_key_with_orphans_is_refused(lossless_engine: Engine) -> None:
    setup(
        lossless_engine,
        "ALTER TABLE sprints DROP CONSTRAINT sprints_goal_id_fkey;"
        " UPDATE sprints SET goal_id = md5('gone')::uuid WHERE title = 'sprint 1';"
        " ALTER TABLE sprints ADD CONSTRAINT sprints_goal_id_fkey FOREIGN KEY (goal_id)"
        " REFERENCES goals (id) NOT VALID",
    )

    assert_refused(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id"),
        "goals",
    )


def test_move_to_parent_of_a_nullable_column_with_nulls_is_refused(
    lossless_engine: Engine,
) -> None:
    setup(
        lossless_engine,
        "ALTER TABLE tasks ADD COLUMN goal_id uuid REFERENCES goals (id);"
        " UPDATE tasks t SET goal_id = s.goal_id FROM sprints s"
        "  WHERE s.id = t.sprint_id AND t.title <> 'task 1';"
        " ALTER TABLE sprints DROP COLUMN goal_id",
    )

    assert_refused(lossless_engine, MOVE_TO_PARENT(), "goal_id")
