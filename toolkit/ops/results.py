"""What operations report: counts of what they moved, stashed, collapsed, restored or lost.

Each operation's implementation returns an ``OpResult`` (``op.<name>(...)`` hands it back to
the revision) and also publishes it to every active ``recording()`` block, which is how the
verifier, ``preflight`` and the CLI learn the counts of a revision run through Alembic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

log = logging.getLogger("lossless.ops")

#: Count keys every operation uses, so reports can add them up across operations.
#: ``filled``: rows given a policy's fill value (``on_missing="fill"``), not restored data.
COUNT_KEYS = ("moved", "stashed", "restored", "collapsed", "lost", "dropped", "filled")


@dataclass(frozen=True)
class OpResult:
    """The outcome of one operation run.

    ``loss_table`` is the table the data comes from, where a declared loss shows (the
    junction for a collapse, the child table for ``move_fk_to_parent``); ``column`` the
    column of ``loss_table`` whose data moved (the stashed or restored column for stash /
    restore, the junction's referent column for a collapse), None when an operation names
    none.
    ``counts`` maps a key of ``COUNT_KEYS`` to a row count (absent in offline mode, where
    nothing is known); ``lost`` is the declared data loss, always reported, possibly 0.

    ``description`` is the operation's ``describe()``: what logs, progress lines and
    reports print of the operation (``summary()``). ``column`` and ``description`` are
    keyword-only, so results built positionally as
    ``OpResult(operation, loss_table, counts)`` keep working.
    """

    operation: str
    loss_table: str
    column: str | None = field(default=None, kw_only=True)
    counts: Mapping[str, int] = field(default_factory=dict)
    offline: bool = False
    notes: tuple[str, ...] = ()
    description: str | None = field(default=None, kw_only=True)

    @property
    def lost(self) -> int:
        return self.counts.get("lost", 0)

    @property
    def where(self) -> str:
        """``loss_table.column``, or ``loss_table`` when no column is named."""
        return f"{self.loss_table}.{self.column}" if self.column else self.loss_table

    def summary(self) -> str:
        """One line: the operation's ``describe()`` and its counts; a result without a
        description (published by a revision's own code) reads ``operation: counts (where)``."""
        name = self.description or self.operation
        place = [] if self.description else [self.where]  # describe() names its columns
        if self.offline:
            return f"{name} ({'; '.join([*place, 'offline: counts unknown'])})"
        shown = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        head = f"{name}: {shown}" if shown else name
        return f"{head} ({place[0]})" if place else head


#: Receives each ``OpResult`` as it is published (progress lines, timings).
OnResult = Callable[[OpResult], None]

_recorders: ContextVar[tuple[tuple[list[OpResult], OnResult | None], ...]] = ContextVar(
    "lossless_recorders", default=()
)


@contextmanager
def recording(on_result: OnResult | None = None) -> Iterator[list[OpResult]]:
    """Collect the ``OpResult`` of every operation run inside the block (nesting allowed).

    ``on_result`` is also called with each result as it is published.
    """
    collected: list[OpResult] = []
    token = _recorders.set((*_recorders.get(), (collected, on_result)))
    try:
        yield collected
    finally:
        _recorders.reset(token)


def publish(result: OpResult) -> OpResult:
    """Log ``result`` and hand it to every active recorder; returns it for chaining."""
    log.info("%s", result.summary())
    for sink, on_result in _recorders.get():
        sink.append(result)
        if on_result is not None:
            on_result(result)
    return result
