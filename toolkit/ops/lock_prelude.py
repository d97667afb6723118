"""The lock prelude: every table lock a revision's operations need, first, in one order.

Before any check or change, an operation (alone, or every operation of
``op.run_lossless``) takes each table lock its statements will need:

- the tables it checks (``Plan.locks()``) and every table its steps alter, write, index or
  drop, read from the statements themselves (``toolkit.sql.lock_plan.needed_locks``);
- the tables referenced by a foreign key it adds (SHARE ROW EXCLUSIVE) or drops (ACCESS
  EXCLUSIVE: the key's triggers live on both sides), from the catalog online and from the
  arguments (``Plan.dropped_references()``) offline;
- the toolkit's ``lossless_stash`` when the steps use it (only if it exists: it is created
  by the steps otherwise, and a new table makes nobody wait);

each once, in the strongest mode needed, in one global order (schema, then table name),
one ``LOCK TABLE`` per table, in one PL/pgSQL block (``toolkit.sql.lock_plan.prelude_block``:
one round trip, the same text online and offline).

Why it cannot deadlock with the application: after the prelude the revision never waits
for a table lock again (it holds the strongest mode on every table it touches), so a
deadlock could only form *during* the prelude: the revision holds some locks and waits
for the next one, held by an application transaction that itself queues behind a lock the
revision already holds. PostgreSQL looks for such a cycle only once a session has waited
``deadlock_timeout``. Each attempt of the prelude is bounded by half of
``deadlock_timeout`` (and by ``lock_timeout`` when that is shorter): each lock waits at
most for what is left of that budget. An application session that starts queueing behind
a prelude lock therefore reaches its deadlock check only after the attempt has ended:
either every lock is held (the revision waits for nothing, no cycle) or a lock could not
be had, and the attempt gave back every lock it took (a rolled-back subtransaction)
before the next one; after the last, the revision fails with a lock timeout, is rolled
back, and ``--lock-retries`` tries it again after a jittered pause. The revision itself
never waits long enough to run a deadlock check. Application statements queue behind an
attempt for at most its budget, and then behind the revision until it commits.

A revision that runs several lossless operations one after another (not through
``op.run_lossless``) cannot take the later ones' locks first: the second operation's
prelude finds the first one's locks held and says so (``LockOrderWarning``), naming the
revision; it does not refuse.
"""

from __future__ import annotations

import re
import sys
import warnings
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from psycopg import sql

from toolkit.ops.runtime import Runner
from toolkit.ops.steps import (
    CheckedByForeignKeys,
    Measure,
    OnlyIfZero,
    Run,
    Step,
    TableLock,
    merged_locks,
)
from toolkit.sql.idents import Sql, render
from toolkit.sql.lock_plan import (
    STASH_TABLE,
    Drop,
    Referents,
    held_locks_query,
    needed_locks,
    prelude_block,
    referents_query,
)

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

    from toolkit.ops.base import Plan

#: What the prelude takes on the stash: no application uses it, so the strongest mode
#: costs nothing and covers every use (bulk writes, ANALYZE, dropping it when empty).
STASH_MODE = "ACCESS EXCLUSIVE"
_STASH_NAME = re.compile(rf'\b{STASH_TABLE}\b|"{STASH_TABLE}"')


class LockOrderWarning(UserWarning):
    """A revision ran a lossless operation after another one, outside ``op.run_lossless``:
    the second one's locks were not taken first, in the global order."""


def take_locks(runner: Runner, plans: Sequence[Plan], *, description: str) -> None:
    """The prelude of ``plans`` (one operation, or a batch) on ``runner``'s connection.

    ``description`` names the operation(s) in the warning about an earlier operation.
    """
    _warn_if_not_first(runner, description)
    locks = prelude_locks(runner, plans)
    if not locks:
        return
    stash = STASH_TABLE if any(lock.table == STASH_TABLE for lock in locks) else None
    runner.run(prelude_block([(lk.schema, lk.table, lk.mode) for lk in locks], stash=stash))


def prelude_locks(runner: Runner, plans: Sequence[Plan]) -> list[TableLock]:
    """Every table lock of ``plans``: one per table, strongest mode, global order."""
    wanted: list[TableLock] = []
    referents = _catalog_referents(runner) if not runner.offline else None
    for plan in plans:
        statements = [render(s) for s in _statements(plan.steps())]
        for lock in needed_locks(statements, schema="", referents=referents):
            wanted.append(TableLock(lock.schema or None, lock.table, lock.mode))
        wanted += plan.locks()
        wanted += [TableLock(s, t, "ACCESS EXCLUSIVE") for s, t in plan.dropped_references()]
        if any(_STASH_NAME.search(text) for text in statements):
            schema = plan.locks()[0].schema if plan.locks() else None
            wanted.append(TableLock(schema, STASH_TABLE, STASH_MODE))
    return merged_locks(wanted)


def _statements(steps: Sequence[Step]) -> Iterator[Sql]:
    for step in steps:
        if isinstance(step, Run | Measure):
            yield step.sql
        elif isinstance(step, OnlyIfZero):
            yield step.step.sql
        elif isinstance(step, CheckedByForeignKeys):
            yield from _statements(step.steps)


def _catalog_referents(runner: Runner) -> Referents:
    """Online: the tables the dropped foreign keys reference, from the catalog. A referent
    in the search path's first schema is named unqualified, as the operations name it."""
    current = str(runner.scalar(sql.SQL("SELECT current_schema()")))

    def referents(drop: Drop) -> list[tuple[str, str]]:
        found = runner.rows(referents_query(drop))
        return [("" if schema == current else str(schema), str(table)) for schema, table in found]

    return referents


@dataclass
class _Seen:
    """The revision call an operation last ran in, on one migration context."""

    #: Held (not its id): a finished frame's id can be reused by the next call.
    frame: FrameType
    revision: str
    operations: list[str]


_seen: weakref.WeakKeyDictionary[MigrationContext, _Seen] = weakref.WeakKeyDictionary()


def _warn_if_not_first(runner: Runner, description: str) -> None:
    """Warn when an earlier lossless operation ran in the same revision (same context)."""
    found = _revision_frame()
    if found is None:
        return
    frame, revision = found
    context = runner.operations.migration_context
    seen = _seen.get(context)
    if seen is None or seen.frame is not frame:
        _seen[context] = _Seen(frame, revision, [description])
        return
    earlier = "; ".join(seen.operations)
    seen.operations.append(description)
    held = "" if runner.offline else _held(runner)
    warnings.warn(
        LockOrderWarning(
            f"revision {revision}: {description} runs after {earlier} in the same"
            f" transaction{held}; its table locks are taken only now, after those, not all"
            " first in one order, so an application transaction can deadlock with the"
            " revision. Pass the operations to one op.run_lossless(...) call"
            " (see docs/live.md)"
        ),
        stacklevel=2,
    )


def _held(runner: Runner) -> str:
    rows = runner.rows(held_locks_query())
    if not rows:
        return ""
    names = ", ".join(f"{mode} on {schema}.{table}" for schema, table, mode in rows)
    return f", which already holds {names}"


def _revision_frame() -> tuple[FrameType, str] | None:
    """The ``upgrade()``/``downgrade()`` of the revision module being run, and a name for it
    (``<id> (<file name>) upgrade``); None outside a revision."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        names = frame.f_globals
        if frame.f_code.co_name in ("upgrade", "downgrade") and isinstance(
            names.get("revision"), str
        ):
            file = frame.f_code.co_filename.rsplit("/", 1)[-1]
            return frame, f"{names['revision']} ({file}) {frame.f_code.co_name}"
        frame = frame.f_back
    return None
