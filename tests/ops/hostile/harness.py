"""Round trips on hostile schemas: run an operation, commit, run its inverse, commit, and
compare the full catalog and data fingerprint; or check a refusal changed nothing.

Column order is left out of "exact": a column an operation drops comes back at the end of
its table (docs/operations.md says why), and ``column_order`` names it for the tests that
check that statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from alembic.operations import MigrateOperation
from sqlalchemy import Engine

from tests.ops.helpers import execute, offline_sql, run_ops
from toolkit.errors import DataRefusedError, UsageError
from toolkit.ops import (
    MoveFkToChildOp,
    MoveFkToParentOp,
    OpResult,
    PromoteFkToJunctionOp,
    StashColumnInJsonbOp,
)
from toolkit.verify.fingerprint import Fingerprint, entries_of, fingerprint, fingerprint_diff

Step = MigrateOperation | Callable[[Any], Any]

#: goals <- sprints.goal_id (NOT NULL); tasks.sprint_id -> sprints; sprints 5 and 6 have no
#: task. Deterministic ids and timestamps.
BASE = """
CREATE TABLE goals (id uuid PRIMARY KEY, title text NOT NULL);
CREATE TABLE sprints (
    id uuid PRIMARY KEY, goal_id uuid NOT NULL REFERENCES goals (id), title text NOT NULL,
    metadata jsonb, created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00');
CREATE TABLE tasks (
    id uuid PRIMARY KEY, sprint_id uuid NOT NULL REFERENCES sprints (id), title text NOT NULL,
    metadata jsonb, created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00+00');
INSERT INTO goals SELECT md5('goal' || i)::uuid, 'goal ' || i FROM generate_series(1, 3) i;
INSERT INTO sprints (id, goal_id, title, metadata)
SELECT md5('sprint' || i)::uuid, md5('goal' || (mod(i, 3) + 1))::uuid, 'sprint ' || i,
       CASE mod(i, 2) WHEN 0 THEN NULL ELSE '{}' END::jsonb
FROM generate_series(1, 6) i;
INSERT INTO tasks (id, sprint_id, title, created_at)
SELECT md5('task' || i)::uuid, md5('sprint' || (mod(i, 4) + 1))::uuid, 'task ' || i,
       '2024-02-01 00:00+00'::timestamptz + i * interval '1 hour'
FROM generate_series(1, 8) i;
"""

#: The three operations that drop ``sprints.goal_id``; the inverse is ``reverse()``.
DROPPING: dict[str, Callable[[], MigrateOperation]] = {
    "stash": lambda: StashColumnInJsonbOp("sprints", "goal_id", jsonb_column="metadata"),
    "promote": lambda: PromoteFkToJunctionOp(
        "sprints",
        "goal_id",
        junction="sprint_goals",
        owner_column="sprint_id",
        referent_column="goal_id",
    ),
    "move_to_child": lambda: MoveFkToChildOp(
        "sprints", "goal_id", child="tasks", child_fk="sprint_id"
    ),
}

#: ``move_fk_to_parent`` of ``tasks.goal_id`` (after a move to the child), and back.
MOVE_TO_PARENT: Callable[[], MigrateOperation] = lambda: MoveFkToParentOp(  # noqa: E731
    "tasks", "goal_id", parent="sprints", child_fk="sprint_id"
)


def setup(engine: Engine, *sql: str) -> None:
    """The base schema, then ``sql`` (each statement list run as written)."""
    with engine.connect() as conn:
        raw = conn.execution_options(isolation_level="AUTOCOMMIT")
        for script in (BASE, *sql):
            execute(raw, script)


def run(engine: Engine, step: Step) -> list[OpResult]:
    """One committed transaction running ``step`` (an operation, or ``fn(op)``)."""
    if isinstance(step, MigrateOperation):
        operation = step
        return run_ops(engine, lambda op: op.invoke(operation))
    return run_ops(engine, step)


def take(engine: Engine, schemas: Sequence[str] = ("public",)) -> Fingerprint:
    with engine.connect() as conn:
        return fingerprint(conn, schemas)


def exact(before: Fingerprint, after: Fingerprint) -> list[str]:
    """The differences that count (all but column order)."""
    return fingerprint_diff(before.without("column order"), after.without("column order"))


def round_trip(
    engine: Engine,
    up: MigrateOperation,
    down: Step | None = None,
    *,
    schemas: Sequence[str] = ("public",),
) -> tuple[Fingerprint, Fingerprint]:
    """Fingerprint, ``up``, commit, ``down`` (default ``up.reverse()``), commit, fingerprint."""
    before = take(engine, schemas)
    run(engine, up)
    run(engine, down if down is not None else up.reverse())
    return before, take(engine, schemas)


def assert_exact(
    engine: Engine,
    up: MigrateOperation,
    down: Step | None = None,
    *,
    schemas: Sequence[str] = ("public",),
) -> None:
    before, after = round_trip(engine, up, down, schemas=schemas)
    assert exact(before, after) == []


def assert_refused(
    engine: Engine,
    step: Step,
    match: str,
    *,
    schemas: Sequence[str] = ("public",),
) -> None:
    """``step`` raises a refusal matching ``match`` and the database is unchanged."""
    before = take(engine, schemas)
    with pytest.raises((DataRefusedError, UsageError), match=match):
        run(engine, step)
    assert fingerprint_diff(before, take(engine, schemas)) == []


def column_order(engine: Engine, table: str) -> str:
    return entries_of(take(engine).entries, kind="column order", table=table)[table]


@contextmanager
def role(engine: Engine, name: str) -> Iterator[str]:
    """A login-less role unique to this database, dropped after."""
    unique = f"{name}_{engine.url.database}"
    with engine.connect() as conn:
        raw = conn.execution_options(isolation_level="AUTOCOMMIT")
        execute(raw, f'CREATE ROLE "{unique}"')
        try:
            yield unique
        finally:
            execute(raw, f'DROP OWNED BY "{unique}" CASCADE; DROP ROLE "{unique}"')


def as_role(name: str, step: MigrateOperation) -> Callable[[Any], Any]:
    """``fn(op)`` running ``step`` under ``SET LOCAL ROLE name``."""

    def run_as(op: Any) -> Any:
        op.get_bind().exec_driver_sql(f'SET LOCAL ROLE "{name}"')
        return op.invoke(step)

    return run_as


def run_offline(engine: Engine, fn: Callable[[Any], Any]) -> None:
    """What ``fn(op)`` prints offline, run as a DBA would (psql: one transaction, as written)."""
    script = offline_sql(fn)
    with engine.connect() as conn:
        execute(conn.execution_options(isolation_level="AUTOCOMMIT"), f"BEGIN;\n{script}COMMIT;")


def assert_refused_offline(
    engine: Engine,
    step: Step,
    match: str,
    *,
    schemas: Sequence[str] = ("public",),
) -> None:
    """The offline script of ``step``, run in one transaction as psql would, raises a
    guard's ``check_violation`` matching ``match``, and the database is unchanged."""
    import psycopg

    operation = step
    script = offline_sql(
        (lambda op: op.invoke(operation)) if isinstance(operation, MigrateOperation) else operation
    )
    before = take(engine, schemas)
    with engine.connect() as conn:
        raw = conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(psycopg.errors.CheckViolation, match=match):
            execute(raw, "BEGIN;\n" + script + "COMMIT;")
        execute(raw, "ROLLBACK")
    assert fingerprint_diff(before, take(engine, schemas)) == []
