"""The lock prelude: every lock first, one order, strongest mode, within deadlock_timeout / 2."""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import OperationalError

from tests.ops.helpers import offline_sql, rows, run_ops
from tests.ops.schemas import goals_and_targets
from toolkit.ops import PromoteFkToJunctionOp, StashColumnInJsonbOp
from toolkit.ops.lock_prelude import LockOrderWarning
from toolkit.postgres.url import libpq_url
from toolkit.sql.lock_plan import PRELUDE_MARK

PROMOTE = PromoteFkToJunctionOp(
    "targets",
    "goal_id",
    junction="target_goal_links",
    owner_column="target_id",
    referent_column="goal_id",
    referent_table="client_goals",
    referent_key="id",
    owner_key="id",
)
STASH = StashColumnInJsonbOp("commitments", "goal_id", primary_key="id")
#: A check (a count of violating rows) or a change.
WORK = ("SELECT count(*) FILTER", "ALTER", "CREATE", "DROP", "INSERT", "UPDATE", "DELETE")


@pytest.fixture
def sent(lossless_engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine sends, in order."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(lossless_engine, "before_cursor_execute", record)
    yield statements
    event.remove(lossless_engine, "before_cursor_execute", record)


def _prelude(statements: list[str]) -> int:
    """The index of the one prelude, checked to come before every check and change."""
    found = [i for i, s in enumerate(statements) if PRELUDE_MARK in s]
    assert len(found) == 1
    assert not any(s.lstrip().startswith(WORK) for s in statements[: found[0]])
    return found[0]


def _locks(statement: str) -> list[str]:
    return re.findall(r"LOCK TABLE [^;]+ MODE", statement)


def test_one_operation_alone_takes_every_lock_first(
    conn: Connection, lossless_engine: Engine, sent: list[str]
) -> None:
    goals_and_targets(conn)

    run_ops(lossless_engine, lambda op: op.invoke(STASH))

    # commitments.goal_id has a foreign key to client_goals: dropping the column drops
    # the key, whose triggers live on client_goals too (ACCESS EXCLUSIVE on both).
    prelude = _prelude(sent)
    assert _locks(sent[prelude]) == [
        "LOCK TABLE client_goals IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE commitments IN ACCESS EXCLUSIVE MODE",
        "LOCK TABLE lossless_stash IN ACCESS EXCLUSIVE MODE",
    ]
    assert any(s.lstrip().startswith(WORK) for s in sent[prelude:])
    assert not any("LOCK TABLE" in s for s in sent[prelude + 1 :])


def test_offline_prints_the_same_prelude_as_online(
    conn: Connection, lossless_engine: Engine, sent: list[str]
) -> None:
    goals_and_targets(conn)
    script = offline_sql(lambda op: op.run_lossless(STASH, PROMOTE))

    run_ops(lossless_engine, lambda op: op.run_lossless(STASH, PROMOTE))

    online = sent[_prelude(sent)]
    printed = script.split(";\n\n")[0]
    assert online == printed
    assert len(_locks(online)) == 4  # client_goals, commitments, the stash, targets


def test_the_prelude_gives_up_within_half_of_deadlock_timeout(
    conn: Connection, lossless_engine: Engine, lossless_database: str
) -> None:
    """A lock that cannot be had fails the prelude (each attempt waits at most half of
    deadlock_timeout, not --lock-timeout's 10 s) with a lock timeout. Nothing changed."""
    goals_and_targets(conn)
    with psycopg.connect(libpq_url(lossless_database)) as app:
        app.execute("INSERT INTO commitments (title) VALUES ('x')")

        def upgrade(op: Any) -> None:
            op.execute("SET LOCAL lock_timeout = '10s'")
            op.execute("SET LOCAL deadlock_timeout = '200ms'")
            op.invoke(STASH)

        with pytest.raises(OperationalError) as raised:
            run_ops(lossless_engine, upgrade)
        app.rollback()

    assert isinstance(raised.value.orig, errors.LockNotAvailable)
    assert PRELUDE_MARK in str(raised.value.statement)
    assert rows(
        conn,
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'commitments' AND column_name = 'goal_id'",
    ) == [(1,)]


def test_an_application_queued_behind_the_prelude_never_deadlocks(
    conn: Connection, lossless_engine: Engine, lossless_database: str
) -> None:
    """The cycle the prelude cannot avoid by order: the application holds commitments and
    then needs client_goals (its foreign key check) while the revision holds client_goals
    and waits for commitments. The prelude's attempt gives up (within its budget, before
    the application's deadlock check) and gives client_goals back: the application's
    insert goes on and commits, and the next attempt takes every lock."""
    goals_and_targets(conn)
    app = psycopg.connect(libpq_url(lossless_database))
    app.execute("SET deadlock_timeout = '2s'")
    app.execute("INSERT INTO commitments (title) VALUES ('first')")
    outcome: dict[str, BaseException | None] = {}

    def migrate() -> None:
        def upgrade(op: Any) -> None:
            op.execute("SET LOCAL deadlock_timeout = '2s'")  # attempts of 0.125 s, 0.25 s...
            op.invoke(STASH)

        try:
            run_ops(lossless_engine, upgrade)
            outcome["migration"] = None
        except BaseException as exc:
            outcome["migration"] = exc

    migration = threading.Thread(target=migrate)
    migration.start()
    with psycopg.connect(libpq_url(lossless_database), autocommit=True) as watcher:
        waiting: list[tuple[Any, ...]] = []
        while not waiting and migration.is_alive():
            waiting = watcher.execute(
                "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE NOT l.granted AND l.pid <> %s",
                (app.info.backend_pid,),
            ).fetchall()
        assert waiting == [("commitments",)]  # the revision holds client_goals, waits here
        # The application's foreign key check now needs client_goals: a cycle.
        app.execute(
            "INSERT INTO commitments (title, goal_id) SELECT 'second', id FROM client_goals LIMIT 1"
        )
        app.commit()
        app.close()
    migration.join()

    assert outcome["migration"] is None
    assert rows(
        conn, "SELECT title FROM commitments WHERE title IN ('first', 'second') ORDER BY 1"
    ) == [("first",), ("second",)]
    assert rows(
        conn,
        "SELECT count(*) FROM commitments WHERE metadata ? 'legacy_goal_id' AND title = 'second'",
    ) == [(1,)]  # the stash ran after the insert


REVISION = """
revision = "c0ffee000001"
down_revision = None


def upgrade(op):
    op.invoke(PROMOTE)
    op.invoke(STASH)
"""


def test_a_second_operation_of_a_revision_warns(
    conn: Connection, lossless_engine: Engine, tmp_path: Path
) -> None:
    goals_and_targets(conn)
    path = tmp_path / "c0ffee000001_two_ops.py"
    path.write_text(REVISION, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("two_ops", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PROMOTE, module.STASH = PROMOTE, STASH

    with pytest.warns(LockOrderWarning) as warned:
        results = run_ops(lossless_engine, module.upgrade)

    assert [r.operation for r in results] == ["promote_fk_to_junction", "stash_column_in_jsonb"]
    assert len(warned) == 1
    message = str(warned[0].message)
    assert message.startswith(
        "revision c0ffee000001 (c0ffee000001_two_ops.py) upgrade: "
        + STASH.describe()
        + " runs after "
        + PROMOTE.describe()
    )
    # measured on the connection: what the first operation still holds
    assert "which already holds ACCESS EXCLUSIVE on public.client_goals" in message
    assert "ACCESS EXCLUSIVE on public.targets" in message
    assert "op.run_lossless(" in message
