"""``lossless lint``: squawk, the PostgreSQL migration linter, over each revision's offline SQL.

The SQL is exactly what ``lossless sql FROM:TO`` prints (timeouts first), linted in one
piece so that squawk sees the ``SET lock_timeout`` the real run has; each finding is then
attributed to the revision whose ``-- Running ...`` section holds its line. Alembic's own
version-table bookkeeping before the first revision is not the team's SQL and is not
reported. Rules are excluded with ``--exclude``, ``[tool.lossless] lint-exclude`` in the
project's ``pyproject.toml`` or ``lint-exclude`` in a ``[lossless]`` section of its
``alembic.ini``.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolkit.commands.migrating import offline_sql
from toolkit.commands.server import Progress, silent
from toolkit.commands.settings import RunSettings, resolve_target
from toolkit.errors import ToolkitError, UsageError
from toolkit.migrate import Project

#: ``-- Running upgrade a -> b`` / ``-- Running downgrade b -> a``, as Alembic prints them.
_STEP = re.compile(r"^-- Running (upgrade|downgrade) (\S*) -> (\S+)\s*$")
#: The config keys that list excluded rules (pyproject.toml and alembic.ini spellings).
_EXCLUDE_KEYS = ("lint-exclude", "lint_exclude")


class LintToolError(ToolkitError):
    """squawk could not be run, or did not answer as expected (a usage problem, exit 2)."""


@dataclass(frozen=True)
class Finding:
    """One squawk finding: the rule, its message and help, where in ``lossless sql``."""

    rule: str
    message: str
    help: str | None
    #: 1-based line in the output of ``lossless sql FROM:TO``.
    line: int
    level: str


@dataclass(frozen=True)
class RevisionLint:
    """The findings in one revision's section of the offline SQL."""

    direction: str
    #: The revision whose ``upgrade()``/``downgrade()`` produced the section.
    revision: str
    step: str
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class LintReport:
    """What squawk found in a span of revisions."""

    target: str
    span: str
    squawk: str
    excluded: tuple[str, ...]
    revisions: tuple[RevisionLint, ...]

    @property
    def findings(self) -> int:
        return sum(len(r.findings) for r in self.revisions)

    @property
    def ok(self) -> bool:
        return self.findings == 0


def lint(
    settings: RunSettings,
    span: str,
    *,
    x: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    progress: Progress = silent,
) -> LintReport:
    """Lint each revision of ``FROM:TO`` with squawk (no database needed)."""
    target = resolve_target(settings)
    excluded = tuple(sorted({*configured_exclusions(target.project), *_split(exclude)}))
    script = offline_sql(settings, span, x=x, progress=progress)
    binary = squawk_binary()
    findings = run_squawk(binary, script, excluded)
    return LintReport(
        target=target.label,
        span=span,
        squawk=squawk_version(binary),
        excluded=excluded,
        revisions=attribute(script, findings),
    )


def squawk_binary() -> str:
    """The ``squawk`` executable of the ``squawk-cli`` wheel (next to this Python first)."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return str(beside)
    found = shutil.which("squawk")
    if found is None:
        raise LintToolError(
            "squawk is not installed: pip install squawk-cli (it comes with lossless's "
            "dependencies; is this the environment lossless was installed in?)"
        )
    return found


def squawk_version(binary: str) -> str:
    """``squawk 2.x.y`` as the binary reports it."""
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "squawk (unknown version)"


def run_squawk(binary: str, script: str, excluded: Sequence[str]) -> list[Finding]:
    """squawk's findings on ``script``, read from its JSON reporter."""
    command = [binary, "--reporter", "json", "--stdin-filepath", "lossless.sql"]
    if excluded:
        command.append(f"--exclude={','.join(excluded)}")
    done = subprocess.run(command, input=script, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        error = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise LintToolError(f"squawk failed: {error}")
    try:
        raw = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise LintToolError(f"squawk printed no JSON: {done.stdout[:200]!r}") from None
    return [
        Finding(
            rule=str(item["rule_name"]),
            message=str(item["message"]),
            help=str(item["help"]) if item.get("help") else None,
            line=int(item["line"]) + 1,  # squawk counts lines from 0
            level=str(item.get("level", "Warning")),
        )
        for item in raw
    ]


def attribute(script: str, findings: Iterable[Finding]) -> tuple[RevisionLint, ...]:
    """Each revision section of ``script`` with the findings on its lines, in order."""
    starts: list[tuple[int, str, str, str]] = []
    for number, line in enumerate(script.splitlines(), start=1):
        match = _STEP.match(line)
        if match:
            direction, source, dest = match.groups()
            revision = dest if direction == "upgrade" else source
            starts.append((number, direction, revision, f"{source or 'base'} -> {dest}"))
    by_section: list[list[Finding]] = [[] for _ in starts]
    for finding in sorted(findings, key=lambda f: (f.line, f.rule)):
        index = _section_of(finding.line, [s[0] for s in starts])
        if index is not None:
            by_section[index].append(finding)
    return tuple(
        RevisionLint(direction=d, revision=r, step=s, findings=tuple(found))
        for (_, d, r, s), found in zip(starts, by_section, strict=True)
    )


def _section_of(line: int, starts: Sequence[int]) -> int | None:
    index = None
    for i, start in enumerate(starts):
        if start <= line:
            index = i
    return index


def configured_exclusions(project: Project) -> tuple[str, ...]:
    """Rules the project excludes: ``[tool.lossless]`` in ``pyproject.toml`` and ``[lossless]``
    in its ``alembic.ini``. A scenario (no ini) reads the ``pyproject.toml`` of the working
    directory or its parents."""
    rules: list[str] = []
    start = project.ini_path.parent if project.ini_path else Path.cwd()
    pyproject = _nearest(start, "pyproject.toml")
    if pyproject is not None:
        rules += _from_pyproject(pyproject)
    if project.ini_path is not None:
        rules += _from_ini(project.ini_path)
    return tuple(rules)


def _nearest(start: Path, name: str) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / name).is_file():
            return folder / name
    return None


def _from_pyproject(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    section = data.get("tool", {}).get("lossless", {})
    for key in _EXCLUDE_KEYS:
        value = section.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{path}: [tool.lossless] {key} must be a list of rule names")
        return _split(value)
    return []


def _from_ini(path: Path) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    if not parser.has_section("lossless"):
        return []
    for key in _EXCLUDE_KEYS:
        if parser.has_option("lossless", key):
            return _split([parser.get("lossless", key)])
    return []


def _split(values: Iterable[str]) -> list[str]:
    """``["a, b", "c"]`` -> ``["a", "b", "c"]``."""
    return [rule for value in values for rule in re.split(r"[\s,]+", value) if rule]
