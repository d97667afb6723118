"""The statements an operation's apply is made of, and the table locks it takes first.

A plan's ``steps()`` is a flat, ordered list of these; ``Runner.execute`` runs it (online)
or prints it (offline) in one place:

- ``Run``: a statement; ``tally`` names the count its changed rows add to;
- ``Measure``: a one-number query, online only (offline nothing can be counted);
- ``OnlyIfZero``: a statement run only when a measure was 0 (online decisions);
- ``CheckedByForeignKeys``: statements whose new foreign keys do ``checks`` while they
  validate (see ``Runner.checked_by_foreign_keys``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from toolkit.errors import UsageError
from toolkit.sql.checks import CheckSet
from toolkit.sql.idents import Sql

#: PostgreSQL's table lock modes, weakest first (``LOCK TABLE ... IN <mode> MODE``).
LOCK_MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
#: What the operations take before their checks: concurrent writes wait, reads go on.
CHECK_LOCK = "SHARE ROW EXCLUSIVE"


@dataclass(frozen=True, order=True)
class TableLock:
    """A table an operation locks, and the mode (one of ``LOCK_MODES``)."""

    schema: str | None
    table: str
    mode: str = CHECK_LOCK

    def __post_init__(self) -> None:
        if self.mode not in LOCK_MODES:
            raise UsageError(f"unknown lock mode {self.mode!r}: one of {', '.join(LOCK_MODES)}")


def merged_locks(locks: Iterable[TableLock]) -> list[TableLock]:
    """One lock per table, in the strongest mode asked for, in one global order
    (schema, then table name): the order every batch takes its locks in."""
    strongest: dict[tuple[str, str], TableLock] = {}
    for lock in locks:
        key = (lock.schema or "", lock.table)
        held = strongest.get(key)
        if held is None or LOCK_MODES.index(lock.mode) > LOCK_MODES.index(held.mode):
            strongest[key] = lock
    return [strongest[key] for key in sorted(strongest)]


@dataclass(frozen=True)
class Run:
    """Execute ``sql``; its changed rows add to ``tally`` when one is named."""

    sql: Sql
    tally: str | None = None


@dataclass(frozen=True)
class Measure:
    """Online only: the number ``sql`` returns, kept as ``name``."""

    sql: Sql
    name: str


@dataclass(frozen=True)
class OnlyIfZero:
    """Online: run ``step`` only if measure ``measure`` was 0."""

    measure: str
    step: Run


@dataclass(frozen=True)
class CheckedByForeignKeys:
    """``steps`` whose foreign keys validate what ``checks`` would (values read once)."""

    checks: CheckSet
    steps: tuple[Step, ...]


Step = Run | Measure | OnlyIfZero | CheckedByForeignKeys


def runs(statements: Sequence[Sql]) -> list[Step]:
    """Plain ``Run`` steps, in order."""
    return [Run(s) for s in statements]


@dataclass(frozen=True)
class ConcurrentIndex:
    """An index online mode builds with ``CREATE INDEX CONCURRENTLY`` (writes go on):
    ``create`` is the whole statement (``toolkit.sql.online.concurrently``), ``name``
    the index it makes on ``table`` (in the steps' schema)."""

    table: str
    name: str
    create: Sql


@dataclass(frozen=True)
class NotNull:
    """A column online mode makes NOT NULL without a scan under a long lock: a
    ``CHECK (column IS NOT NULL)`` added ``NOT VALID`` and validated (writes go on), then
    at the contract ``set_not_null`` (PostgreSQL >= 12 trusts the validated check instead
    of scanning) and the check dropped."""

    table: str
    column: str
    set_not_null: Sql


@dataclass(frozen=True)
class OnlineSteps:
    """What one plan does in each phase of online mode (``toolkit.ops.online``).

    ``prepare``: statements of a transaction before the expand that take no table lock
    the application would wait for (bookkeeping that reads the table); ``expand``:
    statements of the short first transaction (new structure, mirror trigger), under
    ``expand_locks``; ``batch(range)``: the statements that fill the new
    structure for the source rows ``t`` matching ``range`` (already locked), whose
    tallies add up; ``constraints``: ``(table, name, ADD CONSTRAINT ...)`` added ``NOT
    VALID`` then validated, after ``indexes`` are built concurrently, and before the
    ``not_null`` checks are validated; ``measures``: counts read once the backfill is done (each one
    a ``Measure``; ``missing`` must be 0 before the contract); ``contract``: statements
    of the short last transaction, under ``contract_locks``; ``abort``: what undoes an
    unfinished run (under the same locks). ``writes_source``: the batches update the
    source table (whose user triggers would then fire); ``also_writes``: other tables
    (same schema) the batches or the mirrors update, refused likewise when they have
    enabled user triggers.
    """

    table: str
    column: str
    schema: str | None
    keys: tuple[str, ...]
    expand_locks: tuple[TableLock, ...]
    expand: tuple[Step, ...]
    batch: Callable[[Sql], list[Step]]
    constraints: tuple[tuple[str, str, Sql], ...]
    measures: tuple[Measure, ...]
    contract_locks: tuple[TableLock, ...]
    contract: tuple[Step, ...]
    abort: tuple[Step, ...]
    prepare: tuple[Step, ...] = ()
    writes_source: bool = False
    indexes: tuple[ConcurrentIndex, ...] = ()
    not_null: tuple[NotNull, ...] = ()
    #: Indexes the backfill needs (bookkeeping lookups), built concurrently when it starts;
    #: the operation's own contract and abort drop them.
    backfill_indexes: tuple[ConcurrentIndex, ...] = ()
    also_writes: tuple[str, ...] = ()
    #: ``(table, name, ADD CONSTRAINT ... USING INDEX)``: constraints made from an index of
    #: ``indexes`` once it is built (a primary key), each in a short transaction; there is
    #: nothing to validate.
    attach: tuple[tuple[str, str, Sql], ...] = ()
    #: The batches may go by heap pages rather than by key (``toolkit.ops.online``): the
    #: mirror fires on every INSERT and UPDATE (of any column) and leaves the row reflected
    #: even when its value did not change, so a row an update moves to a page the batches
    #: already passed is not missed; and ``batch`` skips rows already done.
    physical: bool = False
