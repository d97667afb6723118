"""Round-trip settings of a team's project: revisions to skip, losses a revision may cause.

Read from ``[tool.lossless]`` in the ``pyproject.toml`` nearest to the ``alembic.ini``
(that folder or a parent), and from the ``[lossless]`` section of the ``alembic.ini``
itself; both are merged. In ``pyproject.toml``::

    [tool.lossless]
    exclude_revisions = ["0007_irreversible_cleanup"]

    [[tool.lossless.allowed_losses]]
    revision = "0005_drop_legacy_notes"
    table = "notes"
    column = "legacy_code"          # optional: without it, any change to the table
    reason = "retired in 2023, archived in the data lake"

In ``alembic.ini``, one allowance per line, ``REVISION TABLE[.COLUMN]: REASON``::

    [lossless]
    exclude_revisions = 0007_irreversible_cleanup
    allowed_losses =
        0005_drop_legacy_notes notes.legacy_code: retired in 2023, archived in the data lake

Every allowance needs a reason: the report shows it next to the loss.

Data hooks (``toolkit.roundtrip.hooks``) add a team's own rows where synthetic ones do not
meet its invariants: a SQL file (path relative to the file declaring it) or a Python
callable ``module:function`` (importable from that folder), run ``before`` or ``after`` a
revision::

    [[tool.lossless.data_hooks]]
    revision = "0005_total_not_null"
    when = "before"
    sql = "migrations/data/orders_with_totals.sql"     # or: call = "testdata:orders"

    [lossless]
    data_hooks =
        before 0005_total_not_null: migrations/data/orders_with_totals.sql
        after 0002_move_body: testdata:bodies
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import UsageError
from toolkit.migrate import Project, resolve_revision
from toolkit.roundtrip.hooks import DataHook, make_hook

INI_SECTION = "lossless"
_INI_HOOK = re.compile(r"^(?P<when>\S+)\s+(?P<rev>[^\s:]+)\s*:\s*(?P<target>\S+)$")
_INI_ALLOWANCE = re.compile(
    r"^(?P<rev>\S+)\s+(?P<table>[^\s.:]+)(?:\.(?P<col>[^\s:]+))?\s*:\s*(?P<reason>.+)$"
)


@dataclass(frozen=True)
class AllowedLoss:
    """Revision ``revision`` may lose data of ``table`` (only ``column`` when given)."""

    revision: str
    table: str
    reason: str
    column: str | None = None

    def covers(self, table: str, column: str | None = None) -> bool:
        """Whether a change to ``table`` (``column``; ``None``: the whole row) is allowed."""
        if table != self.table:
            return False
        return self.column is None or (column is not None and column == self.column)


@dataclass(frozen=True)
class RoundTripSettings:
    """What a project's round trip skips and tolerates."""

    exclude_revisions: frozenset[str] = frozenset()
    allowed_losses: tuple[AllowedLoss, ...] = ()
    data_hooks: tuple[DataHook, ...] = field(default=(), compare=False)
    sources: tuple[str, ...] = field(default=(), compare=False)
    #: A step that changes a table with no rows proved nothing: it fails the run unless this.
    allow_untested_steps: bool = False

    def allowances(self, revision: str) -> tuple[AllowedLoss, ...]:
        """The allowed losses of ``revision``."""
        return tuple(a for a in self.allowed_losses if a.revision == revision)


def load_settings(project: Project) -> RoundTripSettings:
    """The project's settings (empty when it has no ``alembic.ini`` or no settings)."""
    if project.ini_path is None:
        return RoundTripSettings()
    excluded: list[str] = []
    allowed: list[AllowedLoss] = []
    hooks: list[DataHook] = []
    sources: list[str] = []
    allow_untested = False
    pyproject = _nearest_pyproject(project.ini_path.parent)
    if pyproject is not None:
        table = _read_pyproject(pyproject)
        if table:
            sources.append(f"{pyproject.name} [tool.lossless]")
            excluded += _string_list(table.get("exclude_revisions", []), pyproject.name)
            allowed += [_allowance_from_table(t, pyproject.name) for t in _tables(table)]
            hooks += [_hook_from_table(t, pyproject, project) for t in _tables(table, "data_hooks")]
            allow_untested = _flag(table.get("allow_untested_steps", False), pyproject.name)
    ini = _read_ini(project.ini_path)
    if ini is not None:
        sources.append(f"{project.ini_path.name} [{INI_SECTION}]")
        excluded += ini.get("exclude_revisions", "").replace(",", " ").split()
        if "allow_untested_steps" in ini:
            allow_untested = _flag(ini.getboolean("allow_untested_steps"), project.ini_path.name)
        allowed += [
            _allowance_from_line(line, project.ini_path.name)
            for line in ini.get("allowed_losses", "").splitlines()
            if line.strip()
        ]
        hooks += [
            _hook_from_line(line, project.ini_path, project)
            for line in ini.get("data_hooks", "").splitlines()
            if line.strip()
        ]
    return RoundTripSettings(
        exclude_revisions=frozenset(resolve_revision(project, r) for r in excluded),
        allowed_losses=tuple(
            AllowedLoss(resolve_revision(project, a.revision), a.table, a.reason, a.column)
            for a in allowed
        ),
        data_hooks=tuple(hooks),
        sources=tuple(sources),
        allow_untested_steps=allow_untested,
    )


def _flag(value: object, source: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{source}: allow_untested_steps must be true or false")
    return value


def _nearest_pyproject(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def _read_pyproject(path: Path) -> Mapping[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path.name}: not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("lossless", {})
    if not isinstance(table, Mapping):
        raise UsageError(f"{path.name}: [tool.lossless] must be a table")
    return table


def _tables(table: Mapping[str, Any], key: str = "allowed_losses") -> Iterable[Mapping[str, Any]]:
    entries = table.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise UsageError(f"[tool.lossless] {key} must be an array of tables")
    return entries


def _hook_from_table(entry: Mapping[str, Any], path: Path, project: Project) -> DataHook:
    source = f"{path.name} [tool.lossless]"
    targets = [k for k in ("sql", "call") if entry.get(k)]
    missing = [k for k in ("revision", "when") if not entry.get(k)]
    if missing or len(targets) != 1:
        needs = [*missing, *([] if len(targets) == 1 else ["exactly one of sql, call"])]
        raise UsageError(f"{source}: a data hook needs {', '.join(needs)}: {dict(entry)}")
    return make_hook(
        resolve_revision(project, str(entry["revision"])),
        str(entry["when"]),
        str(entry[targets[0]]),
        base=path.parent,
        source=source,
    )


def _hook_from_line(line: str, path: Path, project: Project) -> DataHook:
    source = f"{path.name} [{INI_SECTION}]"
    match = _INI_HOOK.match(line.strip())
    if match is None:
        raise UsageError(
            f"{source}: data hook {line.strip()!r} is not 'before|after REVISION: FILE.sql' "
            "or 'before|after REVISION: module:function'"
        )
    return make_hook(
        resolve_revision(project, match["rev"]),
        match["when"],
        match["target"],
        base=path.parent,
        source=source,
    )


def _string_list(value: object, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{source}: exclude_revisions must be a list of revision ids")
    return list(value)


def _allowance_from_table(entry: Mapping[str, Any], source: str) -> AllowedLoss:
    missing = [k for k in ("revision", "table", "reason") if not entry.get(k)]
    if missing:
        raise UsageError(f"{source}: an allowed loss needs {', '.join(missing)}: {dict(entry)}")
    column = entry.get("column")
    return AllowedLoss(
        revision=str(entry["revision"]),
        table=str(entry["table"]),
        reason=str(entry["reason"]),
        column=str(column) if column else None,
    )


def _read_ini(path: Path) -> configparser.SectionProxy | None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return parser[INI_SECTION] if parser.has_section(INI_SECTION) else None


def _allowance_from_line(line: str, source: str) -> AllowedLoss:
    match = _INI_ALLOWANCE.match(line.strip())
    if match is None:
        raise UsageError(
            f"{source} [{INI_SECTION}]: allowed loss {line.strip()!r} is not "
            "'REVISION TABLE[.COLUMN]: REASON'"
        )
    return AllowedLoss(
        revision=match["rev"], table=match["table"], reason=match["reason"], column=match["col"]
    )
