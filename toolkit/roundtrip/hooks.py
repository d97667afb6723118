"""Data a team supplies for a project's round trip: SQL files or Python callables that run
before or after a given revision (like pytest-alembic's ``before_revision_data`` and
``at_revision_data``), on top of the synthetic rows.

A ``before`` hook of revision R runs when the database stands at R's parent(s), just before
R is upgraded; an ``after`` hook of R runs when the database stands at R, before the step of
a revision that follows R. Either way the step's "before" state includes what the hook
wrote. A SQL file runs as one script; a callable ``module:function`` gets a SQLAlchemy
``Connection`` in a transaction that is committed when it returns.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from toolkit.errors import UsageError
from toolkit.postgres.url import sqlalchemy_url
from toolkit.roundtrip.steps import describe_error

When = Literal["before", "after"]
WHEN: tuple[When, ...] = ("before", "after")

#: What a Python data hook looks like: it writes rows through the connection it is given.
HookFunction = Callable[[Connection], object]


@dataclass(frozen=True)
class DataHook:
    """``sql`` (a file) or ``call`` (``module:function``) runs ``when`` ``revision``."""

    revision: str
    when: When
    source: str
    target: str
    sql: Path | None = None
    call: str | None = None
    function: HookFunction | None = None

    @property
    def label(self) -> str:
        """``before 0005_totals: data/totals.sql`` (as written in the settings)."""
        return f"{self.when} {self.revision}: {self.target}"

    def run(self, url: str) -> None:
        """Write the hook's data into the database at ``url`` (raises what it raises)."""
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        try:
            with engine.begin() as conn:
                if self.function is not None:
                    self.function(conn)
                elif self.sql is not None:
                    script = self.sql.read_text(encoding="utf-8")
                    # The driver's cursor: no parameter parsing, several statements at once.
                    driver = conn.connection.driver_connection
                    if driver is None:
                        raise RuntimeError("no driver connection")
                    driver.cursor().execute(script)
        finally:
            engine.dispose()


def make_hook(revision: str, when: str, target: str, *, base: Path, source: str) -> DataHook:
    """A hook from its settings: ``target`` is a ``.sql`` path (relative to ``base``) or
    ``module:function`` (importable from ``base``). Checked now, before anything runs."""
    moment = next((w for w in WHEN if w == when), None)
    if moment is None:
        raise UsageError(f"{source}: a data hook runs 'before' or 'after' a revision, not {when!r}")
    if target.endswith(".sql"):
        path = Path(target) if Path(target).is_absolute() else base / target
        if not path.is_file():
            raise UsageError(f"{source}: data hook {when} {revision}: no SQL file {target!r}")
        return DataHook(revision, moment, source, target, sql=path)
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise UsageError(
            f"{source}: data hook {when} {revision}: {target!r} is neither a .sql file "
            "nor module:function"
        )
    function = _import(module_name, name, base, source)
    return DataHook(revision, moment, source, target, call=target, function=function)


def _import(module_name: str, name: str, base: Path, source: str) -> HookFunction:
    folder = str(base)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise UsageError(
            f"{source}: data hook {module_name}:{name}: cannot import {module_name!r} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    finally:
        if added:
            sys.path.remove(folder)
    function: HookFunction | None = getattr(module, name, None)
    if not callable(function):
        raise UsageError(f"{source}: data hook {module_name}:{name}: no function {name!r}")
    return function


def hooks_for_step(
    hooks: Iterable[DataHook], revision: str, parents: Sequence[str]
) -> list[DataHook]:
    """What runs before the step of ``revision``: ``after`` hooks of its parents, then its
    own ``before`` hooks, in the order the settings list them."""
    chosen = [h for h in hooks if h.when == "after" and h.revision in parents]
    return chosen + [h for h in hooks if h.when == "before" and h.revision == revision]


def run_hooks(hooks: Iterable[DataHook], url: str) -> tuple[list[str], str | None]:
    """Run ``hooks`` in order: notes for the report, and the first failure, if any."""
    notes: list[str] = []
    for hook in hooks:
        try:
            hook.run(url)
        except Exception as exc:
            # The driver's own errors (a SQL file) read like the server's message.
            text = (
                str(exc).strip().splitlines()[0]
                if isinstance(exc, psycopg.Error)
                else describe_error(exc, url)
            )
            return notes, f"data hook {hook.label} ({hook.source}) failed: {text}"
        notes.append(f"data hook {hook.label}")
    return notes, None
