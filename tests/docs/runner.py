"""Run the blocks of one document in order, in a working directory and a database of its own.

- Shell commands run with ``bash``, starting in the document's working directory (which
  links this repository's ``tests/`` folder, as a checkout has it), with the launcher's
  ``lossless`` (``tests/docs/launcher.py``) and the virtualenv's ``bin`` (``python``) first on
  ``PATH``, stdout and stderr together. The
  exported variables and the directory a command leaves are those of the next command.
  ``LOSSLESS_URL`` and ``URL`` name the document's current database, a fresh one on the
  test server; a document that exports ``LOSSLESS_URL`` (to show a reader where their URL
  goes) does not change that: the tests pin it.
- A command must exit 0, unless its shown output holds a ``lossless: error:`` line (then it
  must fail) or the next command is ``echo $?`` (which prints the real code to compare).
- Python blocks run in one namespace per document, in the working directory, with the
  same environment variables.
- SQL blocks run on the document's database in a transaction that is rolled back; a
  ``:name`` parameter is bound to NULL (the statement is checked, not its rows).
- ``<!-- file: NAME -->`` blocks are written to ``NAME``; a ``pytest.ini`` is also run as
  the configuration of a pytest project around ``tests/projects/faithful`` (see
  ``check_pytest_ini``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.docs.markdown import ROOT, SHELL_LANGUAGES, Block
from tests.docs.transcript import Command, commands, difference, matches, normalise
from toolkit.postgres import scratch_database, sqlalchemy_url
from toolkit.postgres.url import database_name

COMMAND_TIMEOUT_S = 180
#: Database names the documents use in their examples, replaced like the real one.
EXAMPLE_DATABASES = ("app", "scratch", "rehearsal")


@dataclass
class DocumentRun:
    """The state of one document's run: its directory, databases, shell and Python state.

    Use it as a context manager: the databases it created are dropped on exit.
    """

    workdir: Path
    server_url: str
    bin: Path | None = None  # a folder put first on PATH (the launcher's ``lossless``)
    failures: list[str] = field(default_factory=list)
    namespace: dict[str, Any] = field(default_factory=dict)
    last_code: int = 0
    databases: dict[str, str] = field(default_factory=dict)
    current: str = "main"
    timings: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.workdir / "tests").symlink_to(ROOT / "tests")
        self._state = self.workdir.parent / f"{self.workdir.name}.env"
        self._state.write_text(f"cd {shlex.quote(str(self.workdir))}\n")
        self._stack = ExitStack()

    def __enter__(self) -> DocumentRun:
        self.use_database(self.current)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def use_database(self, name: str) -> None:
        """Make ``name`` the current database, creating a fresh one on first use."""
        if name not in self.databases:
            self.databases[name] = self._stack.enter_context(
                scratch_database(self.server_url, prefix="lossless_docs")
            )
        self.current = name

    @property
    def database_url(self) -> str:
        return self.databases[self.current]

    @property
    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOSSLESS_")}
        env.update(
            LOSSLESS_URL=self.database_url,
            URL=self.database_url,
            PATH=os.pathsep.join([*self._bin_folders, env.get("PATH", "")]),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
        )
        return env

    @property
    def _bin_folders(self) -> list[str]:
        return [*([str(self.bin)] if self.bin else []), str(Path(sys.executable).parent)]

    def run(self, block: Block) -> None:
        if block.database is not None:
            self.use_database(block.database)
        if block.file is not None:
            self.write_file(block)
        elif block.language in SHELL_LANGUAGES:
            self.run_shell(block)
        elif block.language == "python":
            self.run_python(block)
        elif block.language == "sql":
            self.run_sql(block)

    # -- shell

    def run_shell(self, block: Block) -> None:
        listed = commands(block.text, block.line + 1)
        for index, command in enumerate(listed):
            following = listed[index + 1].text.strip() if index + 1 < len(listed) else ""
            self._run_command(block, command, exit_checked=following == "echo $?")

    def _run_command(self, block: Block, command: Command, *, exit_checked: bool) -> None:
        where = f"{block.path.relative_to(ROOT)}:{command.line}: $ {command.text}"
        url = shlex.quote(self.database_url)
        script = (
            f"source {shlex.quote(str(self._state))}\n"
            f"export LOSSLESS_URL={url} URL={url}\n"
            f"(exit {self.last_code})\n"
            f"{command.text}\n"
            "__code=$?\n"
            f"export -p > {shlex.quote(str(self._state))}\n"
            f'echo "cd $(printf %q "$PWD")" >> {shlex.quote(str(self._state))}\n'
            "exit $__code\n"
        )
        started = time.monotonic()
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.workdir,
                env=self.environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.failures.append(f"{where}\n  did not finish within {COMMAND_TIMEOUT_S}s")
            return
        self.timings.append((time.monotonic() - started, where))
        self.last_code = done.returncode
        output = done.stdout
        problems = []
        shows_error = command.shown is not None and "lossless: error:" in command.shown
        if shows_error and done.returncode == 0:
            problems.append("the output shown is an error, but the command exited 0")
        if not shows_error and not exit_checked and done.returncode != 0:
            problems.append(f"exit {done.returncode}")
        if command.shown is not None:
            names = (*EXAMPLE_DATABASES, *map(database_name, self.databases.values()))
            shown = normalise(command.shown, names=names)
            real = normalise(output, workdir=str(self.workdir), names=names)
            if not matches(shown, real):
                problems.append("the output differs from the one shown\n" + difference(shown, real))
        if problems:
            detail = "\n".join(problems)
            self.failures.append(f"{where}\n{detail}\n--- real output\n{output}")

    # -- python and SQL

    def run_python(self, block: Block) -> None:
        before = Path.cwd()
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.environment)
        os.chdir(self.workdir)
        try:
            exec(compile(block.text, block.where, "exec"), self.namespace)
        except Exception:
            self.failures.append(f"{block.where}: python block raised\n{traceback.format_exc()}")
        finally:
            os.chdir(before)
            os.environ.clear()
            os.environ.update(saved)

    def run_sql(self, block: Block) -> None:
        names = set(re.findall(r"(?<![:\w]):(\w+)", block.text))
        engine = create_engine(sqlalchemy_url(self.database_url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text(block.text), dict.fromkeys(names))
                conn.rollback()
        except Exception as exc:
            self.failures.append(f"{block.where}: SQL block failed: {exc}")
        finally:
            engine.dispose()

    # -- configuration files

    def write_file(self, block: Block) -> None:
        assert block.file is not None
        target = self.workdir / block.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text)
        if Path(block.file).name == "pytest.ini":
            self.failures.extend(check_pytest_ini(block, self.workdir, self.server_url))


def check_pytest_ini(block: Block, workdir: Path, server_url: str) -> list[str]:
    """Run pytest in a project made of ``tests/projects/faithful`` and this ``pytest.ini``.

    The ini block enables the plugin's built-in round-trip test: pytest must collect and
    pass exactly that one test on the test server.
    """
    project = workdir / "pytest-project"
    shutil.copytree(ROOT / "tests" / "projects" / "faithful", project)
    (project / "pytest.ini").write_text(block.text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOSSLESS_")}
    env.update(LOSSLESS_TEST_URL=server_url, PYTHONUNBUFFERED="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 or not re.search(r"PASSED \S*lossless_roundtrip\b", output):
        return [f"{block.where}: pytest with this pytest.ini (exit {done.returncode})\n{output}"]
    return []
