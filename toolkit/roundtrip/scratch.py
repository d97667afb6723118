"""Scratch databases for a round trip, dropped in the background.

Each ``DROP DATABASE`` waits for a checkpoint: measured on a busy server, four drops took
6.3 s one after the other. A project round trip makes one database per revision, so a
released database is dropped by a background thread, on a connection of its own opened
beforehand (never a new one while a project's code runs under the connection guard),
while the next step runs. Leaving the ``with`` block waits for the last drops.
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

import psycopg
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from toolkit.errors import ProvisioningError, UsageError
from toolkit.postgres import connect, create_database, drop_statement
from toolkit.postgres.url import database_name, scrub, sqlalchemy_url


@dataclass(frozen=True)
class Scratch:
    """A scratch database: its URL and an autocommit connection for the verifier."""

    url: str
    conn: Connection


class ScratchDatabases:
    """Creates uniquely named databases on a server; drops them all, at the latest on exit.

    With ``keep``, nothing is dropped and ``kept`` lists the names.
    """

    def __init__(self, server_url: str, *, keep: bool = False) -> None:
        self.server_url = server_url
        self.keep = keep
        self.kept: list[str] = []
        self._dropper: BackgroundDrops | None = None

    def __enter__(self) -> ScratchDatabases:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.drop_pending()
        except Exception:
            if error is None:
                raise
            # The run's own error matters more than a failed clean-up.

    def create(self, prefix: str, *, template: str | None = None) -> str:
        """A new database (optionally a clone of ``template``); returns its URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        url = create_database(self.server_url, name, template=template)
        if self.keep:
            self.kept.append(name)
        return url

    def release(self, url: str) -> None:
        """The database is no longer needed: drop it in the background."""
        if self.keep:
            return
        if self._dropper is None:
            self._dropper = BackgroundDrops(self.server_url)
        self._dropper.drop(database_name(url))

    def drop_pending(self) -> None:
        """Wait until every released database is dropped; raise the first failure."""
        dropper, self._dropper = self._dropper, None
        if dropper is not None:
            dropper.finish()

    @contextmanager
    def connected(self, prefix: str, *, template: str | None = None) -> Iterator[Scratch]:
        """A new database and an autocommit connection to it; released afterwards."""
        url = self.create(prefix, template=template)
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                yield Scratch(url, conn.execution_options(isolation_level="AUTOCOMMIT"))
        finally:
            engine.dispose()
            self.release(url)


class BackgroundDrops:
    """A thread that drops databases one after the other, on one connection opened now."""

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._conn = connect(server_url)
        self._names: queue.Queue[str | None] = queue.Queue()
        self._errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="lossless-drops", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        """Drop database ``name`` soon (its sessions are disconnected first)."""
        self._names.put(name)

    def finish(self) -> None:
        """Wait for the drops asked so far; ``ProvisioningError`` naming any that failed."""
        self._names.put(None)
        self._thread.join()
        self._conn.close()
        if self._errors:
            raise ProvisioningError("; ".join(self._errors))

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                self._conn.execute(drop_statement(self._server_url, name))
            except (psycopg.Error, UsageError) as exc:
                error = scrub(str(exc).strip(), self._server_url)
                self._errors.append(f"cannot drop database {name!r}: {error}")
