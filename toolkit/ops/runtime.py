"""What every operation's implementation does with Alembic's ``operations``.

``Runner`` is the only place SQL is executed: online through the migration's own
connection (``operations.get_bind()``, so it runs inside the revision's transaction),
offline through ``operations.execute`` (printed). Checks run as queries online and raise
``DataRefusedError`` before anything changed (or, for values a new foreign key validates
anyway, after undoing the changes to a savepoint); offline they are printed as guards that
raise in the database when the script runs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from alembic.operations import Operations
from psycopg.errors import ForeignKeyViolation
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from toolkit.errors import OfflineModeError
from toolkit.ops.results import OpResult, publish
from toolkit.ops.steps import (
    Measure,
    OnlyIfZero,
    Run,
    Step,
    TableLock,
)
from toolkit.sql.checks import CheckSet, count_query, guard_block, refused, samples_query
from toolkit.sql.ddl import lock_tables
from toolkit.sql.idents import Sql, render
from toolkit.sql.lint_notes import with_lint_note
from toolkit.sql.run import execute


class Verbatim(Executable, ClauseElement):
    """SQL text printed exactly as built (offline), whatever paramstyle the script's
    dialect was configured with: no bind parsing, no ``%`` doubling."""

    inherit_cache = False

    def __init__(self, statement: Sql) -> None:
        # A statement that breaks a squawk rule for a documented reason says so.
        self.text = with_lint_note(render(statement))


@compiles(Verbatim)
def _compile_verbatim(element: Verbatim, compiler: Any, **kw: Any) -> str:
    return element.text


class Runner:
    """Executes one operation's SQL, online or offline."""

    def __init__(self, operations: Operations, operation: str) -> None:
        self.operations = operations
        self.operation = operation
        self.offline = bool(operations.migration_context.as_sql)
        self._bind: Connection | None = None if self.offline else operations.get_bind()

    def named(self, operation: str) -> Runner:
        """This runner, for another operation's messages (same connection)."""
        other = copy.copy(self)
        other.operation = operation
        return other

    @property
    def bind(self) -> Connection:
        if self._bind is None:
            raise OfflineModeError(f"{self.operation}: a database query was needed offline")
        return self._bind

    def run(self, sql: Sql) -> int:
        """Execute a statement; returns the rows it changed (0 offline)."""
        if self.offline:
            self.operations.execute(Verbatim(sql))
            return 0
        result = execute(self.bind, sql)
        return max(result.rowcount, 0)

    def lock(self, locks: Sequence[TableLock]) -> None:
        """Take ``locks`` in the order given, one statement per run of equal modes."""
        i = 0
        while i < len(locks):
            j = i
            while j < len(locks) and locks[j].mode == locks[i].mode:
                j += 1
            self.run(lock_tables([(lk.schema, lk.table) for lk in locks[i:j]], locks[i].mode))
            i = j

    def execute(self, steps: Sequence[Step], *, checked: bool = False) -> dict[str, int]:
        """Run ``steps`` in order (online) or print them (offline); returns the tallies
        and measures (online). ``checked``: the foreign keys' checks already ran."""
        tallies: dict[str, int] = {}
        for step in steps:
            if isinstance(step, Run):
                changed = self.run(step.sql)
                if step.tally is not None:
                    tallies[step.tally] = tallies.get(step.tally, 0) + changed
            elif isinstance(step, Measure):
                if not self.offline:
                    tallies[step.name] = int(self.scalar(step.sql))
            elif isinstance(step, OnlyIfZero):
                if not tallies.get(step.measure):
                    self.run(step.step.sql)
            elif checked:
                tallies.update(self.execute(step.steps, checked=True))
            else:
                with self.checked_by_foreign_keys(step.checks):
                    tallies.update(self.execute(step.steps))
        return tallies

    @contextmanager
    def checked_by_foreign_keys(self, checks: CheckSet) -> Iterator[None]:
        """Let the foreign keys added inside the block do ``checks`` (values without a
        referent) instead of running them first: validating a new foreign key is the same
        scan, so the values are read once, not twice.

        The block runs in a savepoint. If a foreign key rejects a value, everything done
        inside is undone and ``checks`` run on the unchanged data to name the rows: the
        caller gets the ``DataRefusedError`` it would have got before any change.
        Offline, or outside a transaction, ``checks`` simply run first.
        """
        if self.offline or not self.bind.in_transaction():
            self.check(checks)
            yield
            return
        savepoint = self.bind.begin_nested()
        try:
            yield
        except IntegrityError as exc:
            savepoint.rollback()
            if isinstance(exc.orig, ForeignKeyViolation):
                self.check(checks)  # raises, unless the violation is not one of these
            raise
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()

    def rows(self, sql: Sql) -> list[tuple[Any, ...]]:
        """Every row of a query (online only: catalog lookups and counts)."""
        return [tuple(r) for r in execute(self.bind, sql)]

    def scalar(self, sql: Sql) -> Any:
        """The first column of the first row of a query (online only)."""
        return execute(self.bind, sql).scalar()

    def require_online_args(self, what: str, **values: object) -> None:
        """Offline, every named value must have been given: online they are reflected."""
        if not self.offline:
            return
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise OfflineModeError(
                f"{self.operation}({what}) needs {', '.join(missing)} in offline (--sql) mode:"
                " online they are read from the database catalog; pass them as arguments"
            )

    def check(self, checks: CheckSet) -> None:
        """Refuse (before any change) if a check finds rows; offline, print the guard."""
        if not checks.checks:
            return
        if self.offline:
            self.run(guard_block(checks))
            return
        counts = self.rows(count_query(checks))[0]
        for check, count in zip(checks.checks, counts, strict=True):
            if count:
                samples = [r[0] for r in self.rows(samples_query(checks, check))]
                raise refused(check, int(count), samples)

    def result(
        self,
        operation: str,
        table: str,
        column: str,
        counts: Mapping[str, int],
        notes: Sequence[str] = (),
        *,
        description: str | None = None,
    ) -> OpResult:
        """Publish an operation's outcome (no counts offline: nothing is known).

        ``table.column`` is where the data comes from, where a declared loss would show.
        """
        shown: dict[str, int] = {}
        if not self.offline:
            shown = {k: int(v) for k, v in counts.items()}
            shown.setdefault("lost", 0)
        result = OpResult(
            operation,
            table,
            shown,
            column=column,
            offline=self.offline,
            notes=tuple(notes),
            description=description,
        )
        return publish(result)
