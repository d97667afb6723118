"""What cannot come back exactly is refused before anything changes, naming the object.

Each case used to end in a PostgreSQL error after the data copy, or worse, in silence.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine

from tests.ops.hostile.harness import (
    DROPPING,
    MOVE_TO_PARENT,
    assert_exact,
    assert_refused,
    assert_refused_offline,
    run,
    setup,
)
from tests.ops.hostile.test_attached import OFFLINE_ROUND_TRIPS
from toolkit.ops import MoveFkToChildOp, PromoteFkToJunctionOp, StashColumnInJsonbOp

#: The key of 'sprint 1' as a refusal names it.
SPRINT_1 = "1cc8eb12-b733-448f-6c0d-e03a2ae0b8e3"

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


CHILD_WITHOUT_PARENT = (
    "ALTER TABLE tasks ALTER sprint_id DROP NOT NULL;"
    " UPDATE tasks SET sprint_id = NULL WHERE title = 'task 3'"
)
NOT_VALID_ORPHAN = (
    "ALTER TABLE sprints DROP CONSTRAINT sprints_goal_id_fkey;"
    " UPDATE sprints SET goal_id = md5('gone')::uuid WHERE title = 'sprint 1';"
    " ALTER TABLE sprints ADD CONSTRAINT sprints_goal_id_fkey FOREIGN KEY (goal_id)"
    " REFERENCES goals (id) NOT VALID"
)
#: The same move, as written for offline mode (nothing reflected).
TO_CHILD_OFFLINE = MoveFkToChildOp(
    "sprints",
    "goal_id",
    child="tasks",
    child_fk="sprint_id",
    type_="uuid",
    parent_key="id",
    referent_table="goals",
    referent_key="id",
)


def test_children_without_parent_are_refused(lossless_engine: Engine) -> None:
    setup(lossless_engine, CHILD_WITHOUT_PARENT)

    assert_refused(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id"),
        r"^refused: tasks\.sprint_id: 1 row\(s\) have no sprints row \(sprint_id is NULL or"
        r" matches no sprints\.id\), so tasks\.goal_id cannot be NOT NULL there"
        r" \(e\.g\. 51febb21-6a83-63cf-2463-38857349e299\); give those rows a parent .*"
        r" or pass nullable=True$",
    )


def test_child_under_a_not_valid_key_without_parent_is_refused(lossless_engine: Engine) -> None:
    # sprint_id stays NOT NULL, but its NOT VALID key let a row point to no sprint.
    setup(
        lossless_engine,
        "ALTER TABLE tasks DROP CONSTRAINT tasks_sprint_id_fkey;"
        " UPDATE tasks SET sprint_id = md5('gone')::uuid WHERE title = 'task 3';"
        " ALTER TABLE tasks ADD CONSTRAINT tasks_sprint_id_fkey FOREIGN KEY (sprint_id)"
        " REFERENCES sprints (id) NOT VALID",
    )

    assert_refused(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id"),
        r"^refused: tasks\.sprint_id: 1 row\(s\) have no sprints row .*51febb21-",
    )


def test_children_without_parent_are_kept_when_nullable(lossless_engine: Engine) -> None:
    setup(lossless_engine, CHILD_WITHOUT_PARENT)

    run(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id", nullable=True),
    )

    with lossless_engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT title, goal_id IS NULL FROM tasks WHERE sprint_id IS NULL"
        ).all()
    assert found == [("task 3", True)]


def test_children_without_parent_are_refused_offline(lossless_engine: Engine) -> None:
    setup(lossless_engine, CHILD_WITHOUT_PARENT)

    # Offline the child's key is not known: ctid names the rows.
    assert_refused_offline(
        lossless_engine,
        TO_CHILD_OFFLINE,
        r"refused: tasks\.sprint_id: 1 row\(s\) have no sprints row .* \(e\.g\. \(0,\d+\)\)",
    )


def test_not_valid_foreign_key_with_orphans_is_refused(lossless_engine: Engine) -> None:
    setup(lossless_engine, NOT_VALID_ORPHAN)

    assert_refused(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id"),
        r"^refused: sprints\.goal_id: 1 row\(s\) point to no row of goals \(e\.g\. "
        + SPRINT_1
        + r"\); fix or clear those values first$",
    )


def test_not_valid_foreign_key_with_orphans_is_refused_offline(lossless_engine: Engine) -> None:
    setup(lossless_engine, NOT_VALID_ORPHAN)

    assert_refused_offline(
        lossless_engine,
        TO_CHILD_OFFLINE,
        r"refused: sprints\.goal_id: 1 row\(s\) point to no row of goals \(e\.g\. " + SPRINT_1,
    )


def test_not_valid_orphans_are_refused_offline_without_referent_key(
    lossless_engine: Engine,
) -> None:
    # REFERENCES goals without its key (as the bundled revisions write it): the guard
    # finds the referent's primary key when the script runs.
    setup(lossless_engine, NOT_VALID_ORPHAN)

    assert_refused_offline(
        lossless_engine,
        replace(TO_CHILD_OFFLINE, referent_key=None),
        r"refused: sprints\.goal_id: 1 row\(s\) point to no row of goals \(e\.g\. " + SPRINT_1,
    )


def test_not_valid_orphan_of_a_childless_parent_is_stashed(lossless_engine: Engine) -> None:
    # sprint 5 has no task: its value is stashed, not copied, and comes back as it was.
    setup(
        lossless_engine,
        NOT_VALID_ORPHAN.replace("'sprint 1'", "'sprint 5'"),
    )

    assert_exact(
        lossless_engine,
        MoveFkToChildOp("sprints", "goal_id", child="tasks", child_fk="sprint_id"),
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


def test_promote_checks_a_referent_named_like_the_keys_in_another_schema(
    lossless_engine: Engine,
) -> None:
    # sprints.goal_id's validated key references ref.goals; the promote names goals
    # (public.goals), which lacks goal 2: that key guarantees nothing about it.
    setup(
        lossless_engine,
        "CREATE SCHEMA ref; CREATE TABLE ref.goals (id uuid PRIMARY KEY);"
        " INSERT INTO ref.goals SELECT id FROM goals;"
        " ALTER TABLE sprints DROP CONSTRAINT sprints_goal_id_fkey;"
        " ALTER TABLE sprints ADD FOREIGN KEY (goal_id) REFERENCES ref.goals (id);"
        " DELETE FROM goals WHERE id = md5('goal2')::uuid",
    )
    promote = PromoteFkToJunctionOp(
        "sprints",
        "goal_id",
        junction="sprint_goals",
        owner_column="sprint_id",
        referent_column="goal_id",
        referent_table="goals",
        referent_key="id",
    )

    assert_refused(
        lossless_engine,
        promote,
        r"^refused: sprints\.goal_id: 2 row\(s\) point to no row of goals ",
        schemas=("public", "ref"),
    )


@pytest.mark.parametrize("operation", sorted(OFFLINE_ROUND_TRIPS))
@pytest.mark.parametrize("dependent", ["view", "policy", "generated column"])
def test_dependent_objects_are_refused_offline(
    lossless_engine: Engine, dependent: str, operation: str
) -> None:
    sql, names = DEPENDENTS[dependent]
    setup(lossless_engine, sql)
    up, _ = OFFLINE_ROUND_TRIPS[operation]

    assert_refused_offline(lossless_engine, up, names)
