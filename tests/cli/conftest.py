"""Fixtures of the CLI tests: a team's Alembic project on disk and a way to run ``lossless``.

Every test runs the CLI in a process of its own, as a DBA would, against the test's own
database: forked from the launcher (``tests.cli.launcher``: the imports are paid once), or a
fresh interpreter for the runs started in the background and the installed console script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from tests.cli.launcher import Launcher
from tests.cli.project import write_project
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database, sqlalchemy_url
from toolkit.postgres.url import database_name

#: The bundled scenario the CLI tests run, and how many targets its seeded copies hold.
SCENARIO = "migration-014"
SEEDED_TARGETS = 20


@dataclass(frozen=True)
class Outcome:
    """What a ``lossless`` run printed and how it exited."""

    code: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        """The error lines on stderr."""
        return [line for line in self.err.splitlines() if line.startswith("lossless: ")]

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


Lossless = Callable[..., Outcome]
MigrateTo = Callable[[str], None]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any LOSSLESS_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOSSLESS_")}
    env.update(extra or {})
    return env


def lossless_argv(*args: str) -> list[str]:
    """The command line of ``python -m toolkit.cli ARGS``."""
    return [sys.executable, "-m", "toolkit.cli", *args]


def start_lossless(*args: str) -> subprocess.Popen[str]:
    """Start ``lossless ARGS`` in the background (stdout and stderr piped)."""
    return subprocess.Popen(
        lossless_argv(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environment(),
    )


_launcher: list[Launcher] = []
RUN_TIMEOUT_S = 300


def run_lossless(
    *args: str, env: Mapping[str, str] | None = None, command: tuple[str, ...] | None = None
) -> Outcome:
    """Run ``lossless ARGS`` in a child process (or ``command ARGS``) and collect its output."""
    if command:
        done = subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            env=clean_environment(env),
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)
    if not _launcher:
        _launcher.append(Launcher(clean_environment()))
    code, out, err = _launcher[0].run(args, env=clean_environment(env), timeout=RUN_TIMEOUT_S)
    return Outcome(code, out, err)


@pytest.fixture(scope="session", autouse=True)
def _stop_the_launcher() -> Iterator[None]:
    """Stop the launcher (started by the first run) at the end of the session."""
    yield
    while _launcher:
        _launcher.pop().close()


def revision_of(conn: Connection) -> list[str]:
    """The revision(s) in ``alembic_version``; empty when no revision ever ran."""
    if not inspect(conn).has_table("alembic_version"):
        return []
    return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def assert_one_error(outcome: Outcome, code: int, *fragments: str) -> str:
    """The run failed with ``code`` and exactly one error line holding every fragment."""
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.err, outcome
    assert len(outcome.errors) == 1, outcome
    line = outcome.errors[0]
    for fragment in fragments:
        assert fragment in line, outcome
    return line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The ``alembic.ini`` of a small team project (see ``tests.cli.project``)."""
    return write_project(tmp_path / "project")


@pytest.fixture
def lossless(project: Path, lossless_database: str) -> Lossless:
    """Run ``lossless -c project --url <the test's database> ARGS``."""

    def run(*args: str, env: Mapping[str, str] | None = None) -> Outcome:
        return run_lossless("-c", str(project), "--url", lossless_database, *args, env=env)

    return run


@contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine (no pooling: nothing stays connected) on ``url``, disposed after."""
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def seeded_template(lossless_server: Server) -> Iterator[str]:
    """A database at the scenario's ``before`` revision, seeded once: tests get copies."""
    scenario = get_scenario(SCENARIO)
    with scratch_database(lossless_server.url, prefix="lossless_test_template") as url:
        migrate.upgrade(Project.for_scenario(scenario), url, scenario.before)
        with engine_on(url) as engine, engine.begin() as conn:
            scenario.seed(conn, SEEDED_TARGETS, 0)
        yield database_name(url)


@pytest.fixture
def seeded_database(lossless_server: Server, seeded_template: str) -> Iterator[str]:
    """The URL of a fresh copy of ``seeded_template`` (CREATE DATABASE ... TEMPLATE)."""
    with scratch_database(
        lossless_server.url, prefix="lossless_test", template=seeded_template
    ) as url:
        yield url


@pytest.fixture
def migrate_to(project: Path, lossless_database: str) -> MigrateTo:
    """Setup, not under test: bring the test's database to a revision, in-process (fast)."""

    def run(revision: str) -> None:
        migrate.upgrade(Project.from_ini(project), lossless_database, revision)

    return run
