"""The server a command talks to, and the session settings of its migration connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from toolkit.commands.settings import RunSettings
from toolkit.errors import ProvisioningError
from toolkit.postgres import Server, provision
from toolkit.postgres.url import database_name, mask_url, parse_url, scrub, sqlalchemy_url

#: Receives one human-readable progress line at a time (the CLI writes them to stderr).
Progress = Callable[[str], None]

APPLICATION_NAME = "lossless"


@dataclass(frozen=True)
class ServerInfo:
    """The server a command worked on, without its password: what reports carry."""

    #: ``url`` (given with --url), ``embedded`` or ``docker`` (throwaway servers).
    kind: str
    version: str
    url: str
    database: str
    sentence: str

    @classmethod
    def of(cls, server: Server) -> ServerInfo:
        return cls(
            kind=server.kind,
            version=server.version,
            url=server.masked_url,
            database=database_name(server.url),
            sentence=server.describe(),
        )

    def describe(self) -> str:
        """``PostgreSQL 16.4 (server at postgresql://dba:***@db1:5432/app)``."""
        return self.sentence

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "url": self.url,
            "database": self.database,
        }


def silent(line: str) -> None:
    """A ``Progress`` that drops every line."""
    del line


@contextmanager
def open_server(settings: RunSettings, progress: Progress = silent) -> Iterator[Server]:
    """Provision the server ``settings`` names, saying plainly when it is a throwaway one."""
    with provision(settings.url, postgres=settings.postgres, env=False) as server:
        progress(f"server: {server.describe()}")
        if server.kind != "url":
            progress(
                "no --url given: this server is deleted when the command ends, "
                "and every change made on it goes with it"
            )
        yield server


def session_url(url: str, settings: RunSettings, *, purpose: str) -> str:
    """``url`` with the run's ``lock_timeout`` and ``statement_timeout`` as startup options.

    Startup options rather than ``SET`` so that they also hold for a team's ``env.py`` that
    opens its own connection from ``sqlalchemy.url`` instead of using the one we pass.
    Meant for SQLAlchemy engines (libpq URLs do not decode ``+`` as a space).
    """
    parsed = parse_url(url)
    ours = (
        f"-c lock_timeout={_milliseconds(settings.lock_timeout_s)} "
        f"-c statement_timeout={_milliseconds(settings.statement_timeout_s)}"
    )
    existing = parsed.query.get("options")
    if isinstance(existing, tuple):
        existing = " ".join(existing)
    # Ours last: PostgreSQL applies -c options in order, and the run's flags are explicit.
    options = f"{existing} {ours}" if existing else ours
    query: dict[str, str] = {"options": options}
    if "application_name" not in parsed.query:
        query["application_name"] = f"{APPLICATION_NAME} {purpose}"
    return parsed.update_query_dict(query).render_as_string(hide_password=False)


def timeouts_sql(settings: RunSettings) -> str:
    """The ``SET`` statements a reviewed script starts with: the run's own timeouts."""
    return (
        f"SET lock_timeout = '{_milliseconds(settings.lock_timeout_s)}ms';\n"
        f"SET statement_timeout = '{_milliseconds(settings.statement_timeout_s)}ms';\n\n"
    )


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


@contextmanager
def open_connection(url: str) -> Iterator[Connection]:
    """A SQLAlchemy connection (no pooling) on a ``session_url``, closed afterwards."""
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            detail = scrub(str(exc.orig).strip(), url)
            raise ProvisioningError(f"cannot connect to {mask_url(url)}: {detail}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()
