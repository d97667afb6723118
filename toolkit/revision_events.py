"""Alembic's ``on_version_apply``, handed to whoever watches the run in this context.

``toolkit.alembic_env.run_migrations()`` passes ``on_version_apply`` to
``context.configure``, which is how the CLI learns, revision by revision, what has been
applied (progress lines, timings, "which revision was running" when something fails). A
team's own ``env.py`` gets the same by passing it too::

    from toolkit.alembic_env import on_version_apply

    context.configure(connection=connection, on_version_apply=on_version_apply)
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from alembic.runtime.migration import MigrationContext, MigrationInfo


class VersionWatcher(Protocol):
    """Told what Alembic does, revision by revision."""

    def configured(self) -> None:
        """``env.py`` configured Alembic with ``on_version_apply``: every step will be told."""

    def applied(self, step: MigrationInfo) -> None:
        """Alembic applied ``step`` (called inside that step's transaction, before commit)."""


_watchers: ContextVar[tuple[VersionWatcher, ...]] = ContextVar("lossless_applied", default=())


def on_version_apply(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic's ``on_version_apply`` callback: tell every active watcher."""
    del ctx, heads, run_args
    for watcher in _watchers.get():
        watcher.applied(step)


def announce_configured() -> None:
    """Say that ``on_version_apply`` was passed to ``context.configure`` (before the run)."""
    for watcher in _watchers.get():
        watcher.configured()


@contextmanager
def watching_versions(watcher: VersionWatcher) -> Iterator[None]:
    """Tell ``watcher`` what is applied inside the block (nesting allowed)."""
    token = _watchers.set((*_watchers.get(), watcher))
    try:
        yield
    finally:
        _watchers.reset(token)
