"""Fixtures of the CLI tests: a team's Alembic project on disk and a way to run ``lossless``.

Every test runs the CLI as a subprocess, as a DBA would, against the test's own database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text

from tests.cli.project import write_project
from toolkit import migrate
from toolkit.migrate import Project


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


def run_lossless(
    *args: str, env: Mapping[str, str] | None = None, command: tuple[str, ...] | None = None
) -> Outcome:
    """Run ``python -m toolkit.cli ARGS`` (or ``command ARGS``) and collect its output."""
    argv = [*command, *args] if command else lossless_argv(*args)
    done = subprocess.run(
        argv, capture_output=True, text=True, env=clean_environment(env), timeout=300, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


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


@pytest.fixture
def migrate_to(project: Path, lossless_database: str) -> MigrateTo:
    """Setup, not under test: bring the test's database to a revision, in-process (fast)."""

    def run(revision: str) -> None:
        migrate.upgrade(Project.from_ini(project), lossless_database, revision)

    return run
