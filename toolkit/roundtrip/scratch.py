"""Scratch databases for a round trip, dropped concurrently in batches.

Each ``DROP DATABASE`` waits for a checkpoint; concurrent drops share it. Measured on a
busy server: four drops took 6.3 s one after the other, 2.6 s together. A project round
trip makes one database per revision, so it drops them in batches rather than one by one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from toolkit.postgres import create_database, drop_database
from toolkit.postgres.url import database_name, sqlalchemy_url

DROP_BATCH = 8


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
        self._pending: list[str] = []

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
        """The database is no longer needed: drop it with the next batch."""
        if self.keep:
            return
        self._pending.append(database_name(url))
        if len(self._pending) >= DROP_BATCH:
            self.drop_pending()

    def drop_pending(self) -> None:
        """Drop every released database now, concurrently."""
        names, self._pending = self._pending, []
        if not names:
            return
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = [pool.submit(drop_database, self.server_url, n) for n in names]
        for result in results:
            result.result()

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
