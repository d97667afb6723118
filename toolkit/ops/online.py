"""Online mode: refactor a large table while the application keeps writing to it.

A plain operation runs in its revision's one transaction, holding its table locks until
commit. Online (``online=True``, ``-x online=true``, ``lossless upgrade --online``), it
runs in phases, each its own short transaction (inside Alembic's ``autocommit_block``):

1. **checks**: every refusal of every operation, before anything changes, without
   table locks (a snapshot);
2. **expand**: one transaction, every lock in one global order under a short
   ``lock_timeout`` (retried): the new structure and a mirror trigger on the source table
   that writes each application change of the moving value into it, and a progress entry;
3. **backfill**: batches of ``batch_size`` rows in primary-key order (or by heap pages
   for the operations that opt in, ``_Pages``), each one
   transaction that locks its rows, fills the new structure for them and records its last
   key; a rerun continues after the last committed batch. Consecutive operations on the
   same source table and key share one pass (``_passes``): a batch locks its rows once
   and fills every one's structure;
4. **constraints**: foreign keys added ``NOT VALID`` (a short lock), then validated
   (a scan that lets writes go on); then the result is measured (``missing`` must be 0);
5. **contract**: one transaction, short ACCESS EXCLUSIVE locks under the same timeout
   and retries: the trigger, the old foreign keys and the old column go.

The revision's own transaction then forgets the progress entries and stamps the version:
until then a rerun resumes wherever the previous run stopped.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from alembic.operations import Operations
from psycopg import sql
from sqlalchemy.exc import DBAPIError

from toolkit.errors import OfflineModeError, OnlineAbortedError, UsageError, VerificationError
from toolkit.lock_retries import with_lock_retries
from toolkit.ops import reflect
from toolkit.ops.base import LosslessOperation, Plan
from toolkit.ops.lock_order import referenced_first
from toolkit.ops.results import OpResult, log
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import (
    CheckedByForeignKeys,
    ConcurrentIndex,
    NotNull,
    OnlineSteps,
    Run,
    Step,
    TableLock,
    merged_locks,
)
from toolkit.sql import online as osql
from toolkit.sql.idents import Sql, render
from toolkit.sql.lock_plan import referenced_tables
from toolkit.sql.lookups import regclass, table_exists
from toolkit.sql.stash import drop_stash_if_empty, ensure_stash

_TRUE = ("1", "true", "yes", "on")
#: SQLSTATEs a short transaction is retried on: lock_timeout, deadlock victim.
_RETRIED = ("55P03", "40P01")
_T = TypeVar("_T")


@dataclass(frozen=True)
class OnlineSettings:
    """How online mode runs: the most rows per batch, how long a batch should hold its
    rows' locks at most, the ``lock_timeout`` of its short transactions and how often
    one is tried again when a lock could not be had."""

    batch_size: int = 5000
    batch_ms: int = 100
    lock_timeout_ms: int = 100
    retries: int = 50

    @classmethod
    def from_x(cls, x: Mapping[str, str]) -> OnlineSettings:
        """``-x online_batch_size=N``, ``-x online_batch_ms=N``, ``-x online_lock_timeout_ms=N``,
        ``-x online_retries=N``."""
        values: dict[str, int] = {}
        for name in ("batch_size", "batch_ms", "lock_timeout_ms", "retries"):
            given = x.get(f"online_{name}")
            if given is None:
                continue
            if not given.isdigit() or (name != "retries" and int(given) == 0):
                raise UsageError(f"-x online_{name}={given!r}: expected a positive whole number")
            values[name] = int(given)
        return cls(**values)


def x_options(operations: Operations) -> dict[str, str]:
    """The revision's ``-x`` options (empty when Alembic was configured without them)."""
    environment = getattr(operations.migration_context, "environment_context", None)
    if environment is None:
        return {}
    options: dict[str, str] = environment.get_x_argument(as_dictionary=True)
    return options


def wanted(operations: Operations, asked: bool | None) -> bool:
    """Online mode for an operation: its own ``online`` argument, else ``-x online``
    (``true``, or ``abort``: undo an unfinished online run)."""
    given = x_options(operations).get("online", "false").lower()
    if given == "abort":
        return True
    if asked is not None:
        return asked
    return given in _TRUE


# -- phases --------------------------------------------------------------------------------


def run_online(runner: Runner, operations: Sequence[LosslessOperation]) -> list[OpResult]:
    """Run ``operations`` online, as one (see the module docstring); resumes a previous run."""
    if runner.offline:
        raise OfflineModeError(
            "online mode runs against a database (its batches are decided as they run);"
            " review the plain SQL instead (without -x online)"
        )
    context = runner.operations.get_context()
    if getattr(context, "_in_external_transaction", False):
        raise UsageError(
            "online mode commits as it goes, but this run is inside a transaction of its"
            " caller (preflight): run that without online mode"
        )
    settings = OnlineSettings.from_x(x_options(runner.operations))
    with context.autocommit_block():
        if x_options(runner.operations).get("online", "").lower() == "abort":
            _abort(runner, settings, operations)
        _contract_all(runner, settings, _prepare(runner, operations, settings))
    return [_finish(runner.named(o.name), o) for o in operations]


def _abort(
    runner: Runner, settings: OnlineSettings, operations: Sequence[LosslessOperation]
) -> None:
    """Undo what an unfinished online run of ``operations`` made, last operation first, each
    in one short transaction; then stop the revision (``OnlineAbortedError``)."""
    undone = []
    for operation in reversed(operations):
        state = _progress(runner, operation)
        if not state:
            continue
        _refuse_other_run(operation, state)
        if state.get("phase") == "contracted":
            raise UsageError(
                f"{operation.describe()}: the online run already contracted; finish it with"
                " `upgrade --online`, then downgrade"
            )
        named = runner.named(operation.name)
        steps = operation.resolve(named).online_steps()

        def abort(steps: OnlineSteps = steps, named: Runner = named) -> None:
            named.lock(referenced_first(named, merged_locks(steps.contract_locks)))
            named.execute(_undo_constraints(steps))
            named.execute(steps.abort)
            named.run(osql.forget_progress(steps.table, steps.column, schema=steps.schema))
            named.run(osql.drop_progress_if_empty(steps.schema))
            named.run(drop_stash_if_empty(steps.schema))

        _short_transaction(named, settings, "abort", abort, timed=True)
        undone.append(operation.describe())
    raise OnlineAbortedError(
        "online run aborted: "
        + ("; ".join(f"undone: {d}" for d in undone) if undone else "nothing was under way")
        + "; the revision was not applied"
    )


def refuse_if_under_way(runner: Runner, operations: Sequence[LosslessOperation]) -> None:
    """A plain run of an operation whose online run is under way would trip over what that
    run made (or drop it half done): refused before any change, saying how to go on."""
    if runner.offline:
        return
    for operation in operations:
        if "online" not in getattr(type(operation), "__dataclass_fields__", {}):
            continue  # no online mode: no online run can be under way
        state = _progress(runner, operation)
        if state:
            table, column, _ = _where(operation)
            raise UsageError(
                f"{operation.describe()}: an online run of {state.get('operation', 'an operation')}"
                f" on {table}.{column} is under way (phase {state.get('phase')!r}, recorded in"
                f" {osql.PROGRESS_TABLE}); nothing was changed: finish it with"
                " `upgrade --online` (-x online=true), or undo it with `--online --abort`"
                " (-x online=abort), then run this again"
            )


def under_way(runner: Runner, operation: LosslessOperation) -> bool:
    """Whether an online run of ``operation`` is under way (its progress row exists): its
    expand's structures are there, and resolving it again must expect them."""
    state = _progress(runner, operation)
    return bool(state) and state.get("operation", operation.name) == operation.name


def _refuse_other_run(operation: LosslessOperation, state: Mapping[str, Any]) -> None:
    """The progress row of this column belongs to another operation's online run."""
    other = state.get("operation")
    if state and other is not None and other != operation.name:
        table, column, _ = _where(operation)
        raise UsageError(
            f"{operation.describe()}: an online run of {other} on {table}.{column} is under"
            f" way (phase {state.get('phase')!r}); finish it (`upgrade --online`) or undo it"
            " (`--online --abort`) first; nothing was changed"
        )


@dataclass
class _Job:
    """One operation under way: its plan's online steps, the phase and key it reached."""

    operation: LosslessOperation
    plan: Plan
    steps: OnlineSteps
    phase: str | None
    last: str | None
    rows: int
    #: What the batches counted (``Run`` tallies), kept in the progress entry.
    tallies: dict[str, int]


def _prepare(
    runner: Runner, operations: Sequence[LosslessOperation], settings: OnlineSettings
) -> list[_Job]:
    """Checks and expand (a fresh run), then backfill and constraints: the jobs to contract."""
    progress = [_progress(runner, o) for o in operations]
    for operation, state in zip(operations, progress, strict=True):
        _refuse_other_run(operation, state)
    if all(p.get("phase") == "contracted" for p in progress):
        return []
    if any(p.get("phase") == "contracted" for p in progress):
        raise UsageError("online mode: a previous run contracted only some of these operations")
    jobs = []
    for operation, state in zip(operations, progress, strict=True):
        named = runner.named(operation.name)
        plan = operation.resolve(named)
        last = state.get("last")
        jobs.append(
            _Job(
                operation,
                plan,
                plan.online_steps(),
                state.get("phase"),
                None if last is None else json.dumps(last),
                int(state.get("rows", 0)),
                {str(k): int(v) for k, v in dict(state.get("tallies", {})).items()},
            )
        )
    fresh = [job for job in jobs if job.phase is None]
    if fresh and len(fresh) < len(jobs):
        raise UsageError("online mode: a previous run expanded only some of these operations")
    if fresh:
        _check(runner, jobs)
        _expand(runner, settings, jobs)
    for shared in _passes(jobs):
        _backfill(runner.named(shared[0].plan.operation), settings, shared)
        for job in shared:
            _constrain(runner.named(job.plan.operation), settings, job)
    return jobs


def _passes(jobs: Sequence[_Job]) -> list[list[_Job]]:
    """The jobs in order, consecutive ones that can share one backfill pass together:
    both in the backfill phase, the same source table, schema and key, and the same last
    key recorded (their progress entries advance in the same transactions; entries a
    previous run left apart are filled in passes of their own)."""
    passes: list[list[_Job]] = []
    for job in jobs:
        if passes and _can_share(passes[-1][0], job):
            passes[-1].append(job)
        else:
            passes.append([job])
    return passes


def _can_share(first: _Job, job: _Job) -> bool:
    a, b = first.steps, job.steps
    return (
        first.phase == job.phase == "backfill"
        and (a.table, a.schema, a.keys, a.physical) == (b.table, b.schema, b.keys, b.physical)
        and first.last == job.last
    )


def _check(runner: Runner, jobs: Sequence[_Job]) -> None:
    """Every refusal of every operation, before the first change."""
    for job in jobs:
        named = runner.named(job.plan.operation)
        if job.steps.writes_source or job.steps.also_writes:
            _refuse_user_triggers(named, job.steps)
        job.plan.refuse(named)
        for checks in job.plan.checks():
            named.check(checks)
        # What a plain run lets its new foreign keys check: online they come after the
        # backfill, so these refusals run now, before the first change.
        for step in job.plan.steps():
            if isinstance(step, CheckedByForeignKeys):
                named.check(step.checks)


def _refuse_user_triggers(runner: Runner, steps: OnlineSteps) -> None:
    tables = ([steps.table] if steps.writes_source else []) + list(steps.also_writes)
    for table in tables:
        _refuse_triggers_of(runner, table, steps.schema)


def _refuse_triggers_of(runner: Runner, table: str, schema: str | None) -> None:
    found = [r[0] for r in runner.rows(osql.user_triggers(table, schema=schema))]
    if found:
        raise UsageError(
            f"{runner.operation}: {table} has enabled triggers ({', '.join(found)}) that"
            " the batches of online mode would fire on every row (a plain run keeps them"
            " quiet, which online mode cannot do without disabling them for the"
            " application too); run this operation without online mode"
        )


def _expand(runner: Runner, settings: OnlineSettings, jobs: Sequence[_Job]) -> None:
    """The preparations (no table lock), then one short transaction: every expand lock in
    one order, the new structures, the mirror triggers, the progress entries."""
    locks = referenced_first(
        runner, merged_locks(lock for job in jobs for lock in job.steps.expand_locks)
    )

    def prepare() -> None:
        for job in jobs:
            runner.named(job.plan.operation).execute(job.steps.prepare)
        for schema in {job.steps.schema for job in jobs}:
            runner.run(drop_stash_if_empty(schema))  # the expand creates it for good

    def expand() -> None:
        runner.lock(locks)
        for job in jobs:
            named = runner.named(job.plan.operation)
            named.run(ensure_stash(job.steps.schema))
            named.run(osql.ensure_progress(job.steps.schema))
            named.execute(job.steps.expand)
            named.run(
                osql.start_progress(
                    job.steps.table,
                    job.steps.column,
                    job.plan.operation,
                    _direction.get(),
                    schema=job.steps.schema,
                )
            )
            job.phase = "backfill"

    _short_transaction(runner, settings, "prepare", prepare)
    _short_transaction(runner, settings, "expand", expand, timed=True)


def _backfill(runner: Runner, settings: OnlineSettings, jobs: Sequence[_Job]) -> None:
    """Batches from where the progress entries say (by heap pages, ``_Pages``, or in key
    order), each its own transaction, sized to hold their rows' locks about ``batch_ms``
    at most (``_next_size``); ``jobs`` share the pass (``_passes``): each batch locks its
    rows once and fills every job's new structure for them."""
    if jobs[0].phase != "backfill":
        return
    steps = jobs[0].steps
    for index in (i for job in jobs for i in job.steps.backfill_indexes):
        _build_concurrently(runner, index, steps.schema)
    total = _estimate(runner, steps)
    pages = _Pages.of(runner, jobs, total)
    started, done = time.monotonic(), 0
    said, size = started, min(settings.batch_size, max(100, settings.batch_size // 4))
    while True:
        began = time.monotonic()
        batch = _short_transaction(
            runner,
            settings,
            "backfill batch",
            functools.partial(_one_batch, runner, size, jobs, pages),
        )
        if batch is None:
            break
        done += batch
        now = time.monotonic()
        size = _next_size(settings, size, now - began)
        if now - said >= 2.0:
            said = now
            _say(runner, _progress_line(jobs, jobs[0].rows, total, done, now - started))
    _backfilled(runner, settings, jobs, done, time.monotonic() - started)


@dataclass
class _Pages:
    """A pass by heap pages: each batch is a range of pages (a TID range scan) instead of
    the next rows in key order. With a random key (UUID), a key-ordered batch of 3,000
    rows touches about as many pages, and its row locks write a full-page image of each;
    a page range touches each page once. The progress entries record ``[next page, end,
    file node]``. ``end`` is the table's size when the pass began: every row written since
    the expand (inserted, updated, moved by an update, or rewritten by the batches of a
    stash) fired the mirror, which left it reflected, so only rows on pages below it can
    still need a batch; a rewrite of the table (a new file node) starts the pass again from
    page 0. ``rows`` and ``pages`` measure how many rows a page holds, to turn a batch's
    size in rows into pages."""

    #: Rows per page: the table's average when the pass began, then following the batches
    #: (never below half that average, so that a stretch of emptied pages does not make the
    #: next batch span far more rows than it should).
    density: float
    floor: float

    @classmethod
    def of(cls, runner: Runner, jobs: Sequence[_Job], total: int) -> _Pages | None:
        """A pass by pages when every job opts in (``OnlineSteps.physical``) and the server
        scans TID ranges (PostgreSQL 14 and later), and no key was recorded (a run of an
        older version goes on in key order); else None: key order."""
        steps, last = jobs[0].steps, jobs[0].last
        if not all(job.steps.physical for job in jobs):
            return None
        if last is not None and not isinstance(json.loads(last), list):
            return None
        query = osql.relation_pages(steps.table, schema=steps.schema)
        pages, _node, tid_ranges = runner.rows(query)[0]
        if not tid_ranges:
            return None
        density = total / pages if total > 0 and pages > 0 else 0.0
        return cls(density, max(1.0, density / 2))

    def span(self, size: int) -> int:
        """How many pages hold about ``size`` rows (one while not known yet)."""
        if self.density <= 0:
            return 1
        return max(1, int(size / self.density))

    def saw(self, rows: int, pages: int) -> None:
        """A batch locked ``rows`` rows on ``pages`` pages."""
        seen = rows / pages
        mixed = seen if self.density <= 0 else (self.density + seen) / 2
        self.density = max(self.floor, mixed)


def _backfilled(
    runner: Runner, settings: OnlineSettings, jobs: Sequence[_Job], done: int, seconds: float
) -> None:
    """Say what each job's backfill did, analyze what it filled, record the next phase."""
    shared = f" (one pass with {_columns(jobs)})" if len(jobs) > 1 else ""
    for job in jobs:
        steps = job.steps
        _say(
            runner,
            f"{job.plan.operation}: backfill of {steps.table}.{steps.column}: {done} rows in"
            f" {seconds:.1f}s ({done / seconds if seconds else 0:.0f} rows/s){shared}",
        )
    schema = jobs[0].steps.schema
    for table in dict.fromkeys(t for job in jobs for t in _filled_tables(job.steps)):
        runner.run(osql.analyze(table, schema=schema))

    def end() -> None:
        for job in jobs:
            steps = job.steps
            runner.run(osql.set_phase(steps.table, steps.column, "constraints", schema=schema))

    _short_transaction(runner, settings, "backfill end", end)
    for job in jobs:
        job.phase = "constraints"


def _columns(jobs: Sequence[_Job]) -> str:
    """``table.a`` or ``table.(a, b)``: the columns a pass fills."""
    columns = [job.steps.column for job in jobs]
    table = jobs[0].steps.table
    return f"{table}.{columns[0]}" if len(columns) == 1 else f"{table}.({', '.join(columns)})"


def _filled_tables(steps: OnlineSteps) -> list[str]:
    """The source table and the tables the constraints phase reads (the new structure)."""
    named = [steps.table, *(t for t, _, _ in steps.constraints), *(i.table for i in steps.indexes)]
    return list(dict.fromkeys(named))


def _next_size(settings: OnlineSettings, size: int, seconds: float) -> int:
    """The rows of the next batch: fewer when this one took longer than ``batch_ms`` (an
    application write waiting for one of its rows waited that long), more again, up to
    ``batch_size``, while batches take less than half of it. The first batch of each
    backfill is a quarter of ``batch_size``: the server's pace is not known yet."""
    target = settings.batch_ms / 1000
    if seconds > target:
        return max(1, int(size * target / seconds * 0.8))
    if seconds < target / 2:
        return min(settings.batch_size, size + max(1, size // 2))
    return size


def _one_batch(runner: Runner, size: int, jobs: Sequence[_Job], pages: _Pages | None) -> int | None:
    """Lock the next ``size`` rows (by pages when ``pages``), fill every job's new
    structure for them, record where the next batch starts in every job's progress entry;
    None when the pass is over."""
    if pages is not None:
        return _one_page_batch(runner, size, jobs, pages)
    steps, last = jobs[0].steps, jobs[0].last
    lock = osql.lock_next_batch(steps.table, steps.keys, last, size, schema=steps.schema)
    count, upto = runner.rows(lock)[0]
    if not count:
        return None
    where = osql.key_range(steps.table, steps.keys, last, str(upto), schema=steps.schema)
    _advance(runner, jobs, where, str(upto), int(count))
    return int(count)


def _one_page_batch(runner: Runner, size: int, jobs: Sequence[_Job], pages: _Pages) -> int | None:
    """The next range of pages (``_Pages``): its rows locked, every job's structure filled
    for them; None once the range reaches the end of the pass."""
    steps, last = jobs[0].steps, jobs[0].last
    now, node, _ = runner.rows(osql.relation_pages(steps.table, schema=steps.schema))[0]
    first, end, file = json.loads(last) if last is not None else (0, int(now), node)
    if file != node:  # rewritten (VACUUM FULL, CLUSTER): every row moved
        first, end = 0, int(now)
    if first >= end:
        return None
    upto = min(end, first + pages.span(size))
    count = int(runner.rows(osql.lock_pages(steps.table, first, upto, schema=steps.schema))[0][0])
    where = osql.page_range(first, upto)
    _advance(runner, jobs, where, json.dumps([upto, end, node]), count)
    pages.saw(count, upto - first)
    return count


def _advance(runner: Runner, jobs: Sequence[_Job], where: Sql, upto: str, count: int) -> None:
    """Every job's statements for the locked rows ``where`` selects, and its progress entry
    advanced to ``upto`` (JSON text)."""
    tallies = [_fill(runner, job, where, upto, count) for job in jobs]
    # Only once every statement ran: a retried batch starts from the same state.
    for job, counted in zip(jobs, tallies, strict=True):
        job.last, job.rows, job.tallies = upto, job.rows + count, counted


def _fill(runner: Runner, job: _Job, where: Sql, upto: str, count: int) -> dict[str, int]:
    """One job's part of a batch: its statements for the rows ``where`` selects, and its
    progress entry advanced to ``upto``; the job's tallies with this batch's added."""
    steps = job.steps
    counted = runner.named(job.plan.operation).execute(steps.batch(where))
    tallies = {k: job.tallies.get(k, 0) + counted.get(k, 0) for k in {*job.tallies, *counted}}
    runner.run(
        osql.advance(
            steps.table, steps.column, upto, count, json.dumps(tallies), schema=steps.schema
        )
    )
    return tallies


def _estimate(runner: Runner, steps: OnlineSteps) -> int:
    """The planner's row count of the source table (for the ETA; never shown as a fact)."""
    query = sql.SQL("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = {}").format(
        regclass(steps.table, steps.schema)
    )
    return int(runner.scalar(query) or 0)


def _progress_line(jobs: Sequence[_Job], before: int, total: int, done: int, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    left = max(total - before, 0)
    eta = f", about {left / rate:.0f}s left" if rate > 0 and total else ""
    operations = " and ".join(dict.fromkeys(job.plan.operation for job in jobs))
    return (
        f"{operations}: backfill of {_columns(jobs)}: {before} of ~{total} rows,"
        f" {rate:.0f} rows/s{eta}"
    )


def _constrain(runner: Runner, settings: OnlineSettings, job: _Job) -> None:
    """Indexes built concurrently (and the constraints made from them attached), then
    foreign keys and checks NOT VALID then validated (the NOT NULL checks last); then the
    measures (nothing may be missing)."""
    if job.phase != "constraints":
        return
    steps = job.steps
    for index in steps.indexes:
        _build_concurrently(runner, index, steps.schema)
    for table, name, statement in steps.attach:
        if not runner.rows(osql.constraint_state(table, name, schema=steps.schema))[0][0]:
            attach = functools.partial(runner.run, statement)
            _short_transaction(runner, settings, f"add {name}", attach)
    checks = [
        (n.table, osql.not_null_check_name(n.table, n.column), _not_null_check(n, steps.schema))
        for n in steps.not_null
    ]
    for table, name, statement in (*steps.constraints, *checks):
        exists, validated = runner.rows(osql.constraint_state(table, name, schema=steps.schema))[0]
        if not exists:
            add = functools.partial(_add_not_valid, runner, statement)
            _short_transaction(runner, settings, f"add {name}", add)
        if not validated:
            runner.run(osql.validate(table, name, schema=steps.schema))
    job.phase = "measured"


def _add_not_valid(runner: Runner, statement: Sql) -> None:
    """``statement`` ``NOT VALID``; a foreign key's referenced table locked first (``SHARE
    ROW EXCLUSIVE``, what the ``ADD`` takes on it), as an application takes them (a parent
    row before its children): ``ALTER TABLE`` alone takes its own table first, and would
    hold it while it waits for an application transaction that wrote the parent and waits
    for the child: a lock cycle until ``lock_timeout``, again and again under load."""
    referents = referenced_tables(render(statement))
    runner.lock([TableLock(s, t) for s, t in referents if runner.scalar(table_exists(t, s))])
    runner.run(osql.not_valid(statement))


def _not_null_check(not_null: NotNull, schema: str | None) -> Sql:
    return osql.add_not_null_check(not_null.table, not_null.column, schema=schema)


def _build_concurrently(runner: Runner, index: ConcurrentIndex, schema: str | None) -> None:
    """``CREATE INDEX CONCURRENTLY`` outside any transaction; a valid index of that name is
    kept (a resumed run), an invalid one (left by a killed build) is dropped and rebuilt."""
    exists, valid = runner.rows(osql.index_state(index.name, schema=schema))[0]
    if exists and valid:
        return
    if exists:
        runner.run(osql.drop_index_concurrently(index.name, schema=schema))
    runner.run(index.create)


def _set_not_null(steps: OnlineSteps) -> list[Step]:
    """The contract's end: each column made NOT NULL (trusting its validated check, so no
    scan), then the check dropped."""
    out: list[Step] = []
    for n in steps.not_null:
        name = osql.not_null_check_name(n.table, n.column)
        out += [
            Run(n.set_not_null),
            Run(osql.drop_constraint_if_exists(n.table, name, schema=steps.schema)),
        ]
    return out


def _undo_constraints(steps: OnlineSteps) -> list[Step]:
    """What the constraints phase made, for an abort (before the operation's own undo)."""
    out: list[Step] = [
        Run(
            osql.drop_constraint_if_exists(
                n.table, osql.not_null_check_name(n.table, n.column), schema=steps.schema
            )
        )
        for n in steps.not_null
    ]
    out += [
        Run(osql.drop_constraint_if_exists(table, name, schema=steps.schema))
        for table, name, _ in steps.attach
    ]
    return out + [
        Run(osql.drop_index_if_exists(i.name, schema=steps.schema)) for i in steps.indexes
    ]


def _contract_all(runner: Runner, settings: OnlineSettings, jobs: Sequence[_Job]) -> None:
    """Measure, then one short transaction: every contract lock in one order, the steps."""
    if not jobs:
        return
    reports = [_measure(runner.named(job.plan.operation), job) for job in jobs]
    locks = referenced_first(
        runner, merged_locks(lock for job in jobs for lock in job.steps.contract_locks)
    )

    def contract() -> None:
        runner.lock(locks)
        for job, payload in zip(jobs, reports, strict=True):
            named = runner.named(job.plan.operation)
            named.execute(job.steps.contract)
            named.execute(_set_not_null(job.steps))
            steps = job.steps
            named.run(
                osql.set_phase(
                    steps.table, steps.column, "contracted", schema=steps.schema, extra=payload
                )
            )

    _short_transaction(runner, settings, "contract", contract, timed=True)


def _measure(runner: Runner, job: _Job) -> str:
    """The measures of a filled structure as the result's payload (JSON text); refuses
    to contract when a value is missing from it."""
    tallies = {**job.tallies, **runner.execute(job.steps.measures)}
    missing = tallies.pop("missing", 0)
    steps = job.steps
    if missing:
        raise VerificationError(
            f"{runner.operation}: {missing} value(s) of {steps.table}.{steps.column} are not in"
            " the new structure after the backfill; nothing was dropped; running the same"
            " command again continues from here, `--online --abort` undoes the run"
        )
    counts, notes = job.plan.report(tallies)
    return json.dumps({"counts": counts, "notes": notes})


def _finish(runner: Runner, operation: LosslessOperation) -> OpResult:
    """In the revision's transaction: the result recorded by the contract, and the progress
    entry forgotten (the version stamp commits with it)."""
    table, column, schema = _where(operation)
    state = _progress(runner, operation)
    runner.run(osql.forget_progress(table, column, schema=schema))
    runner.run(osql.drop_progress_if_empty(schema))
    counts = {str(k): int(v) for k, v in dict(state.get("counts", {})).items()}
    notes = [str(n) for n in state.get("notes", [])]
    return runner.result(
        runner.operation, table, column, counts, notes, description=operation.describe()
    )


# -- helpers ---------------------------------------------------------------------------------


def _where(operation: LosslessOperation) -> tuple[str, str, str | None]:
    """The progress entry's table, column and schema (``progress_key``)."""
    return operation.progress_key()


def _progress(runner: Runner, operation: LosslessOperation) -> dict[str, Any]:
    """The progress entry of ``operation`` (empty: no online run of it under way)."""
    table, column, schema = _where(operation)
    exists = sql.SQL("SELECT {} IS NULL").format(regclass(osql.PROGRESS_TABLE, schema))
    if runner.scalar(exists):
        return {}
    found = reflect.json_value(runner, osql.read_progress(table, column, schema=schema))
    return dict(found) if found else {}


def _short_transaction(
    runner: Runner,
    settings: OnlineSettings,
    what: str,
    work: Callable[[], _T],
    *,
    timed: bool = False,
) -> _T:
    """``work`` in one transaction under the short ``lock_timeout``; tried again (with a
    growing, jittered pause) when a lock could not be had or it was a deadlock's victim.
    ``timed``: say how long the transaction that committed took (its locks' hold time)."""

    def once() -> _T:
        began = time.monotonic()
        runner.run(sql.SQL("BEGIN"))
        try:
            runner.run(osql.local_lock_timeout(settings.lock_timeout_ms))
            result = work()
        except BaseException:
            runner.run(sql.SQL("ROLLBACK"))
            raise
        runner.run(sql.SQL("COMMIT"))
        if timed:
            held = (time.monotonic() - began) * 1000
            _say(runner, f"{runner.operation}: {what}: committed in {held:.0f} ms")
        return result

    def retrying(retry: int, pause: float, _error: Exception) -> None:
        _say(runner, f"{runner.operation}: {what}: a lock was busy; retry {retry} in {pause:.2f}s")

    return with_lock_retries(
        once,
        retries=settings.retries,
        lock_not_available=_lock_busy,
        on_retry=retrying,
        pause=_short_pause,
    )


def _lock_busy(error: Exception) -> bool:
    """A lock could not be had in time, or this transaction was a deadlock's victim."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in _RETRIED


def _short_pause(retry: int) -> float:
    """Pauses far shorter than ``--lock-retries``': 50 ms doubling to at most 2 s, jittered."""
    return min(0.05 * 2.0 ** min(retry - 1, 6), 2.0) * random.uniform(0.5, 1.0)


_sinks: ContextVar[tuple[Callable[[str], None], ...]] = ContextVar("lossless_online", default=())
#: Which way the revisions run (``upgrade``/``downgrade``) when the caller said so.
_direction: ContextVar[str | None] = ContextVar("lossless_online_direction", default=None)


@contextmanager
def running(direction: str) -> Iterator[None]:
    """Record ``direction`` in the progress rows of online runs started inside the block,
    so that a later plain ``downgrade`` knows an unfinished online *upgrade* is its to undo
    (``toolkit.commands.migrating``)."""
    token = _direction.set(direction)
    try:
        yield
    finally:
        _direction.reset(token)


@contextmanager
def progress_lines(sink: Callable[[str], None]) -> Iterator[None]:
    """Hand online mode's progress lines (backfill rate and ETA, retries) to ``sink``
    inside the block; they are logged in any case."""
    token = _sinks.set((*_sinks.get(), sink))
    try:
        yield
    finally:
        _sinks.reset(token)


def _say(runner: Runner, line: str) -> None:
    del runner
    log.info("%s", line)
    for sink in _sinks.get():
        sink(line)
