"""Everything attached to a column an operation drops comes back exactly.

Each object is created on ``sprints.goal_id``; each of the three dropping operations runs,
commits, its inverse (``reverse()``) runs and commits, and the full catalog and data
fingerprint must be identical (column order aside, see the harness).
"""

from __future__ import annotations

import pytest
from alembic.operations import MigrateOperation
from sqlalchemy import Engine, text

from tests.cli.conftest import engine_on
from tests.ops.helpers import execute
from tests.ops.hostile.harness import (
    DROPPING,
    MOVE_TO_PARENT,
    assert_exact,
    assert_refused,
    exact,
    run,
    run_offline,
    setup,
    take,
)
from tests.ops.hostile.test_triggers_rls import TOUCH
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import UsageError
from toolkit.migrate import Project
from toolkit.ops import (
    CollapseJunctionToFkOp,
    MoveFkToChildOp,
    MoveFkToParentOp,
    PromoteFkToJunctionOp,
    RestoreColumnFromJsonbOp,
    StashColumnInJsonbOp,
)
from toolkit.postgres import Server, scratch_database
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

#: name -> SQL that attaches one object to sprints.goal_id
ATTACHED = {
    "plain index": "CREATE INDEX ix_sprints_goal ON sprints (goal_id)",
    "partial index": ("CREATE INDEX ix_sprints_goal_titled ON sprints (goal_id) WHERE title <> ''"),
    "expression index": "CREATE INDEX ix_sprints_goal_text ON sprints ((goal_id::text))",
    "multi-column index": (
        "CREATE INDEX ix_sprints_title_goal ON sprints (title, goal_id DESC) WITH (fillfactor = 70)"
    ),
    "unique constraint": (
        "ALTER TABLE sprints ADD CONSTRAINT uq_sprints_goal_title UNIQUE (goal_id, title)"
    ),
    "check constraint": (
        "ALTER TABLE sprints ADD CONSTRAINT ck_sprints_goal"
        " CHECK (goal_id <> '00000000-0000-0000-0000-000000000000')"
    ),
    "extended statistics": "CREATE STATISTICS st_sprints ON goal_id, title FROM sprints",
    "SET STATISTICS": "ALTER TABLE sprints ALTER goal_id SET STATISTICS 700",
    "comment": "COMMENT ON COLUMN sprints.goal_id IS 'the goal ✓'",
    "column grant": "GRANT SELECT (goal_id), UPDATE (goal_id) ON sprints TO PUBLIC",
    "collation": (
        "ALTER TABLE sprints DROP CONSTRAINT sprints_goal_id_fkey;"
        ' ALTER TABLE sprints ALTER goal_id TYPE text COLLATE "C";'
        ' ALTER TABLE goals ALTER id TYPE text COLLATE "C";'
        " ALTER TABLE sprints ADD FOREIGN KEY (goal_id) REFERENCES goals (id)"
    ),
    "ON UPDATE CASCADE and DEFERRABLE": (
        "ALTER TABLE sprints DROP CONSTRAINT sprints_goal_id_fkey;"
        " ALTER TABLE sprints ADD CONSTRAINT sprints_goal_id_fkey FOREIGN KEY (goal_id)"
        " REFERENCES goals (id) ON UPDATE CASCADE ON DELETE RESTRICT"
        " DEFERRABLE INITIALLY DEFERRED"
    ),
    "second foreign key elsewhere": (
        "CREATE TABLE goal_archive (id uuid PRIMARY KEY);"
        " INSERT INTO goal_archive SELECT id FROM goals;"
        " ALTER TABLE tasks ADD COLUMN archived_goal uuid REFERENCES goal_archive (id);"
        " COMMENT ON TABLE goal_archive IS 'archive'"
    ),
    "NOT VALID foreign key": (
        "ALTER TABLE sprints DROP CONSTRAINT sprints_goal_id_fkey;"
        " ALTER TABLE sprints ADD CONSTRAINT sprints_goal_id_fkey FOREIGN KEY (goal_id)"
        " REFERENCES goals (id) NOT VALID"
    ),
    "default": "ALTER TABLE sprints ALTER goal_id SET DEFAULT md5('goal1')::uuid",
    "storage": "ALTER TABLE sprints ALTER title SET STORAGE EXTERNAL",
}

ALL = frozenset(DROPPING)
#: attached -> (operations that do not carry it yet, why)
NOT_YET: dict[str, tuple[frozenset[str], str]] = {}


def cases() -> list[object]:
    found = []
    for name in ATTACHED:
        for operation in DROPPING:
            failing, reason = NOT_YET.get(name, (frozenset(), ""))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if operation in failing else []
            found.append(pytest.param(name, operation, marks=marks, id=f"{operation}-{name}"))
    return found


@pytest.mark.parametrize(("attached", "operation"), cases())
def test_attached_object_comes_back(lossless_engine: Engine, attached: str, operation: str) -> None:
    setup(lossless_engine, ATTACHED[attached])

    assert_exact(lossless_engine, DROPPING[operation]())


def test_promote_of_a_column_with_two_foreign_keys_is_refused(lossless_engine: Engine) -> None:
    """A junction column references one table: promote refuses rather than pick one."""
    setup(
        lossless_engine,
        "CREATE TABLE goal_archive (id uuid PRIMARY KEY);"
        " INSERT INTO goal_archive SELECT id FROM goals;"
        " ALTER TABLE sprints ADD CONSTRAINT sprints_goal_archived"
        " FOREIGN KEY (goal_id) REFERENCES goal_archive (id)",
    )

    assert_refused(lossless_engine, DROPPING["promote"](), "no single foreign key")


#: The offline form of each dropping operation and of its inverse (nothing reflected):
#: what a revision's `--sql` prints, run as a DBA would (psql: one transaction).
OFFLINE_ROUND_TRIPS: dict[str, tuple[MigrateOperation, MigrateOperation]] = {
    "stash": (
        StashColumnInJsonbOp("sprints", "goal_id", jsonb_column="metadata", primary_key="id"),
        RestoreColumnFromJsonbOp(
            "sprints",
            "goal_id",
            jsonb_column="metadata",
            type_="uuid",
            nullable=False,
            primary_key="id",
        ),
    ),
    "promote": (
        PromoteFkToJunctionOp(
            "sprints",
            "goal_id",
            junction="sprint_goals",
            owner_column="sprint_id",
            referent_column="goal_id",
            referent_table="goals",
            referent_key="id",
            owner_key="id",
        ),
        CollapseJunctionToFkOp(
            "sprint_goals",
            table="sprints",
            column="goal_id",
            owner_column="sprint_id",
            referent_column="goal_id",
            type_="uuid",
            nullable=False,
            owner_key="id",
        ),
    ),
    "move_to_child": (
        MoveFkToChildOp(
            "sprints",
            "goal_id",
            child="tasks",
            child_fk="sprint_id",
            type_="uuid",
            parent_key="id",
            referent_table="goals",
        ),
        MoveFkToParentOp(
            "tasks",
            "goal_id",
            parent="sprints",
            child_fk="sprint_id",
            type_="uuid",
            nullable=False,
            parent_key="id",
            child_key="id",
        ),
    ),
}

#: Several attached objects at once, and triggers that must not fire.
MANY = [
    ATTACHED[name]
    for name in (
        "partial index",
        "multi-column index",
        "unique constraint",
        "check constraint",
        "extended statistics",
        "SET STATISTICS",
        "comment",
        "column grant",
        "ON UPDATE CASCADE and DEFERRABLE",
        "default",
    )
]


@pytest.mark.parametrize("operation", sorted(OFFLINE_ROUND_TRIPS))
def test_offline_round_trip_carries_what_is_attached(
    lossless_engine: Engine, operation: str
) -> None:
    setup(lossless_engine, *MANY, TOUCH)
    before = take(lossless_engine)
    up, down = OFFLINE_ROUND_TRIPS[operation]

    run_offline(lossless_engine, lambda op: op.invoke(up))
    run_offline(lossless_engine, lambda op: op.invoke(down))

    assert exact(before, take(lossless_engine)) == []


DECOUPLING = get_scenario("iteration-decoupling")
DECOUPLING_PROJECT = Project.for_scenario(DECOUPLING)

#: Objects a team added to tasks.goal_id after a move to the child made it.
CHILD_COLUMN_OBJECTS = (
    "CREATE INDEX ix_tasks_goal ON tasks (goal_id) WHERE title <> '';"
    " ALTER TABLE tasks ADD CONSTRAINT ck_tasks_goal CHECK (goal_id IS NOT NULL);"
    " COMMENT ON COLUMN tasks.goal_id IS 'the goal';"
    " GRANT SELECT (goal_id) ON tasks TO PUBLIC;"
    " ALTER TABLE tasks ALTER goal_id SET STATISTICS 300;"
    " ALTER TABLE tasks ALTER goal_id SET DEFAULT '00000000-0000-0000-0000-000000000000'"
)


def _child_column_with_objects(engine: Engine) -> None:
    setup(engine)
    run(engine, DROPPING["move_to_child"]())
    with engine.begin() as conn:
        for script in (CHILD_COLUMN_OBJECTS, TOUCH):
            execute(conn, script)


def test_move_to_parent_carries_what_is_attached_to_the_child_column(
    lossless_engine: Engine,
) -> None:
    # tasks.goal_id (made by a move to the child) with objects of its own; the move back to
    # the parent drops it, the move to the child after gives it back with them.
    _child_column_with_objects(lossless_engine)

    assert_exact(lossless_engine, MOVE_TO_PARENT())


def test_move_to_parent_offline_carries_what_is_attached_to_the_child_column(
    lossless_engine: Engine,
) -> None:
    _child_column_with_objects(lossless_engine)
    before = take(lossless_engine)
    to_child, to_parent = OFFLINE_ROUND_TRIPS["move_to_child"]

    run_offline(lossless_engine, lambda op: op.invoke(to_parent))
    with lossless_engine.connect() as conn:
        recorded = text("SELECT count(*) FROM lossless_stash WHERE kind = 'column'")
        assert conn.execute(recorded).scalar() == 1  # the child's column, with what it carries
    run_offline(lossless_engine, lambda op: op.invoke(to_child))

    assert exact(before, take(lossless_engine)) == []


def test_iteration_decoupling_carries_an_index_a_team_added_to_the_child_column(
    lossless_server: Server,
) -> None:
    """The scenario's downgrade records the objects a team added to iterations_ite.plm_id;
    an online upgrade after it refuses (it cannot build them without long locks), the plain
    one gives them back and leaves no stash."""
    with scratch_database(lossless_server.url, prefix="lossless_carried") as url:
        migrate.upgrade(DECOUPLING_PROJECT, url, DECOUPLING.before)
        with engine_on(url) as engine, engine.begin() as conn:
            DECOUPLING.seed(conn, 30, 2)
        migrate.upgrade(DECOUPLING_PROJECT, url, DECOUPLING.after)
        with engine_on(url) as engine, engine.begin() as conn:
            conn.execute(text("CREATE INDEX ix_ite_plan ON iterations_ite (plm_id, created_at)"))
            conn.execute(text("COMMENT ON COLUMN iterations_ite.plm_id IS 'the plan'"))
        with engine_on(url) as engine, engine.connect() as conn:
            upgraded = fingerprint(conn)
        migrate.downgrade(DECOUPLING_PROJECT, url, DECOUPLING.before)
        with engine_on(url) as engine, engine.connect() as conn:
            downgraded = fingerprint(conn)

        with pytest.raises(UsageError, match="online mode cannot re-create them"):
            migrate.upgrade(DECOUPLING_PROJECT, url, DECOUPLING.after, x={"online": "true"})
        with engine_on(url) as engine, engine.connect() as conn:
            assert fingerprint_diff(downgraded, fingerprint(conn)) == []

        migrate.upgrade(DECOUPLING_PROJECT, url, DECOUPLING.after)
        with engine_on(url) as engine, engine.connect() as conn:
            assert fingerprint_diff(upgraded, fingerprint(conn)) == []
