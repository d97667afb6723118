"""pytest plugin: a real PostgreSQL server for the session and a fresh database per test.

Installed with the package (entry point ``pytest11``), so any repo that has ``lossless``
installed gets these fixtures; nothing starts unless a test asks for one:

- ``lossless_server``: a ``toolkit.postgres.Server``, session-wide. ``LOSSLESS_TEST_URL``
  (or ``--lossless-url``) names a server; without it an embedded PostgreSQL is started.
- ``lossless_database``: the URL of a fresh, empty database, dropped after the test.
- ``lossless_engine``: a SQLAlchemy engine on that database.

If no server can be had, the run stops once with one clear message: tests never skip for
lack of a database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from toolkit.errors import ToolkitError
from toolkit.postgres import Server, provision, scratch_database
from toolkit.postgres.url import sqlalchemy_url

ENV_TEST_URL = "LOSSLESS_TEST_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossless", "lossless: PostgreSQL for tests")
    group.addoption(
        "--lossless-url",
        default=None,
        help=f"PostgreSQL server URL for the tests (default: ${ENV_TEST_URL}, else embedded)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    url = config.getoption("--lossless-url") or os.environ.get(ENV_TEST_URL)
    from toolkit.postgres import mask_url

    return f"lossless: PostgreSQL from {mask_url(url) if url else 'an embedded server'}"


_SERVER_KEY = pytest.StashKey[Server]()


@pytest.fixture(scope="session")
def lossless_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's PostgreSQL server (stops the whole run once if none can be had)."""
    url = request.config.getoption("--lossless-url") or os.environ.get(ENV_TEST_URL) or None
    with ExitStack() as stack:
        try:
            server = stack.enter_context(provision(url, env=False))
        except ToolkitError as exc:
            pytest.exit(f"lossless: no PostgreSQL server for the tests: {exc}", returncode=3)
        request.config.stash[_SERVER_KEY] = server
        yield server


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    server = config.stash.get(_SERVER_KEY, None)
    if server is not None:
        terminalreporter.write_line(f"lossless: tests ran on {server.describe()}")


@pytest.fixture
def lossless_database(lossless_server: Server) -> Iterator[str]:
    """The URL of a fresh empty database on the session's server, dropped afterwards."""
    with scratch_database(lossless_server.url, prefix="lossless_test") as url:
        yield url


@pytest.fixture
def lossless_engine(lossless_database: str) -> Iterator[Engine]:
    """A SQLAlchemy engine (psycopg 3, no pooling) on ``lossless_database``."""
    engine = create_engine(sqlalchemy_url(lossless_database), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
