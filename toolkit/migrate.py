"""Run Alembic for a project: a bundled scenario's script directory or a team's alembic.ini.

The thin layer between orchestration (``commands``, ``roundtrip``) and Alembic's own
``command`` module: builds the ``Config``, validates revisions, collects the operations'
``OpResult``s, and turns Alembic's errors into the toolkit's.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from toolkit.errors import MissingExtensionError, ToolkitError, UsageError
from toolkit.guard import guarded, lend
from toolkit.ops.results import OpResult, recording
from toolkit.postgres.url import sqlalchemy_url
from toolkit.project_code import from_project_code
from toolkit.scenario import Scenario
from toolkit.sql.online import PROGRESS_TABLE
from toolkit.sql.stash import STASH_TABLE

#: The URL env.py is given when it runs offline (it is never connected to).
OFFLINE_URL = "postgresql://offline/offline"
#: Alembic's default version table.
DEFAULT_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Project:
    """Where the revisions come from."""

    label: str
    script_location: Path | None = None
    ini_path: Path | None = None
    ini_section: str = "alembic"
    #: Revision folders that ``env.py`` sets at run time (found by running it offline).
    version_locations: tuple[Path, ...] = ()

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> Project:
        return cls(label=scenario.name, script_location=scenario.script_location)

    @classmethod
    def from_ini(cls, path: str | Path, *, section: str = "alembic") -> Project:
        ini = Path(path).resolve()
        if not ini.is_file():
            raise UsageError(f"no such Alembic config file: {path}")
        return cls(label=ini.name, ini_path=ini, ini_section=section).with_revisions()

    def with_revisions(self) -> Project:
        """This project, or, when its folders hold no revision, the folders ``env.py`` sets.

        Some ``env.py`` files set the versions folder at run time; it is run once offline
        (no database) to learn them. ``UsageError`` when still no revision is found.
        """
        if _revision_count(self.script()):
            return self
        cfg = self.config(OFFLINE_URL, output=io.StringIO())
        script = self.script(cfg)
        offline = EnvironmentContext(
            cfg, script, fn=lambda rev, context: [], as_sql=True, dont_mutate=True
        )
        with self.running_code(allowed=(), why="the revisions are looked up offline"), offline:
            script.run_env()
        found = [Path(p) for p in script.version_locations]
        found += [Path(p) for p in cfg.get_version_locations_list() or ()]
        if found:
            candidate = replace(self, version_locations=tuple(dict.fromkeys(found)))
            if _revision_count(candidate.script()):
                return candidate
        where = ", ".join(str(p) for p in self.revision_folders()) or "(none)"
        raise UsageError(
            f"{self.label}: no revisions found (looked in {where}, and ran env.py offline "
            "to see whether it sets version_locations): check script_location and "
            "version_locations"
        )

    def revision_folders(self) -> list[Path]:
        """Where the revisions are looked for."""
        return [Path(p) for p in self.script().version_locations] or [
            Path(self.script().dir) / "versions"
        ]

    def code_dirs(self) -> list[Path]:
        """Folders of the project's own code: the ini's folder, env.py's, the revisions'."""
        dirs = [Path(self.script().dir).resolve(), *(p.resolve() for p in self.revision_folders())]
        if self.ini_path is not None:
            dirs.append(self.ini_path.parent)
        return dirs

    def revision_files(self) -> dict[Path, str]:
        """Each revision's file and id."""
        return {
            Path(r.path).resolve(): r.revision
            for r in self.script().walk_revisions("base", "heads")
            if r.path
        }

    @contextmanager
    def running_code(
        self,
        *,
        allowed: Sequence[str],
        why: str | None = None,
        connection: Connection | None = None,
        commit_allowed: bool = True,
    ) -> Iterator[None]:
        """Run the project's env.py and revisions: connections to anything but ``allowed``
        refused, ``connection`` lent to env.py, exceptions of its own code named as such."""
        dirs = self.code_dirs()
        try:
            with (
                guarded(allowed, project_dirs=dirs, why=why),
                lend(connection, commit_allowed=commit_allowed, project_dirs=dirs),
            ):
                yield
        except (ToolkitError, DBAPIError, CommandError):
            raise
        except Exception as exc:
            found = from_project_code(exc, dirs, self.revision_files())
            if found is None:
                raise
            raise found from exc

    def config(
        self,
        url: str | None = None,
        *,
        connection: Connection | None = None,
        output: io.StringIO | None = None,
        x: Mapping[str, str] | None = None,
    ) -> Config:
        """An Alembic ``Config`` aimed at ``url`` (and/or an open ``connection``)."""
        cfg = Config(
            str(self.ini_path) if self.ini_path else None,
            ini_section=self.ini_section,
            output_buffer=output,
            stdout=output if output is not None else io.StringIO(),
        )
        if self.script_location is not None:
            cfg.set_main_option("script_location", str(self.script_location))
        elif cfg.get_main_option("script_location") is None:
            raise UsageError(f"{self.label}: no script_location in [{self.ini_section}]")
        if self.version_locations:
            cfg.set_main_option("path_separator", "os")
            cfg.set_main_option(
                "version_locations", os.pathsep.join(str(p) for p in self.version_locations)
            )
        if url is not None:
            # ConfigParser interpolation: a literal % in a password must be doubled.
            cfg.set_main_option(
                "sqlalchemy.url",
                sqlalchemy_url(url).render_as_string(hide_password=False).replace("%", "%%"),
            )
        if connection is not None:
            cfg.attributes["connection"] = connection
        if x:
            cfg.cmd_opts = argparse.Namespace(x=[f"{k}={v}" for k, v in x.items()])
        return cfg

    def script(self, cfg: Config | None = None) -> ScriptDirectory:
        try:
            return ScriptDirectory.from_config(cfg or self.config())
        except CommandError as exc:
            raise UsageError(f"{self.label}: {exc}") from None


@dataclass(frozen=True)
class RevisionInfo:
    """One revision, as ``history`` shows it."""

    revision: str
    down_revision: tuple[str, ...]
    message: str


def resolve_revision(project: Project, revision: str) -> str:
    """Check ``revision`` names something in the project (ids, heads, base, relative forms)."""
    if revision in ("head", "heads", "base") or "+" in revision or "-" in revision:
        return revision
    try:
        found = project.script().get_revision(revision)
    except CommandError as exc:
        raise UsageError(f"{project.label}: unknown revision {revision!r}: {exc}") from None
    if found is None:
        raise UsageError(f"{project.label}: unknown revision {revision!r}")
    return found.revision


#: Why a preflight refuses every connection env.py opens by itself.
OWN_CONNECTION_REFUSED = (
    "preflight runs on the connection it gives env.py (config.attributes['connection']) "
    "and rolls it back; a connection of env.py's own would commit for real"
)


def _run(
    fn_name: str,
    project: Project,
    url: str | None,
    revision: str,
    connection: Connection | None,
    x: Mapping[str, str] | None,
    own_connections: bool = True,
) -> list[OpResult]:
    cfg = project.config(url, connection=connection, x=x)
    allowed = [url] if url is not None and own_connections else []
    why = None if own_connections else OWN_CONNECTION_REFUSED
    with (
        recording() as results,
        project.running_code(
            allowed=allowed, why=why, connection=connection, commit_allowed=own_connections
        ),
    ):
        try:
            getattr(command, fn_name)(cfg, revision)
        except CommandError as exc:
            raise UsageError(f"{project.label}: {exc}") from None
        except DBAPIError as exc:
            extension = MissingExtensionError.named_in(str(exc.orig or exc))
            if extension is not None:
                raise MissingExtensionError(
                    extension, needed_by=f"the revisions of {project.label}"
                ) from None
            raise
    return results


def upgrade(
    project: Project,
    url: str | None,
    revision: str = "heads",
    *,
    connection: Connection | None = None,
    x: Mapping[str, str] | None = None,
    own_connections: bool = True,
) -> list[OpResult]:
    """Upgrade to ``revision``; returns what the toolkit's operations reported.

    With ``connection``, env.py is lent it; without ``own_connections`` (preflight), any
    connection env.py opens by itself is refused.
    """
    return _run(
        "upgrade", project, url, resolve_revision(project, revision), connection, x, own_connections
    )


def downgrade(
    project: Project,
    url: str | None,
    revision: str,
    *,
    connection: Connection | None = None,
    x: Mapping[str, str] | None = None,
    own_connections: bool = True,
) -> list[OpResult]:
    """Downgrade to ``revision``; returns what the toolkit's operations reported.

    With ``connection``, env.py is lent it; without ``own_connections`` (preflight), any
    connection env.py opens by itself is refused.
    """
    return _run(
        "downgrade",
        project,
        url,
        resolve_revision(project, revision),
        connection,
        x,
        own_connections,
    )


def offline_sql(
    project: Project,
    span: str,
    *,
    url: str | None = None,
    x: Mapping[str, str] | None = None,
) -> str:
    """The SQL for ``FROM:TO`` without touching a database (``alembic upgrade --sql``).

    Goes down when ``TO`` is an ancestor of ``FROM``. ``x`` holds the ``-x NAME=VALUE``
    options a revision reads (``context.get_x_argument``), as for ``upgrade``.
    """
    if ":" not in span:
        raise UsageError(f"expected FROM:TO, got {span!r}")
    start, end = span.split(":", 1)
    start_id = resolve_revision(project, start) if start else "base"
    end_id = resolve_revision(project, end)
    output = io.StringIO()
    cfg = project.config(url or OFFLINE_URL, output=output, x=x)
    direction = "downgrade" if _is_ancestor(project, end_id, start_id) else "upgrade"
    with recording():
        try:
            getattr(command, direction)(cfg, f"{start_id}:{end_id}", sql=True)
        except CommandError as exc:
            raise UsageError(f"{project.label}: {exc}") from None
    return output.getvalue()


def _is_ancestor(project: Project, maybe_ancestor: str, revision: str) -> bool:
    if maybe_ancestor == "base" and revision != "base":
        return True
    if revision in ("base", "head", "heads") or maybe_ancestor in ("head", "heads"):
        return False
    script = project.script()
    ancestors = {r.revision for r in script.iterate_revisions(revision, "base")}
    return maybe_ancestor in ancestors and maybe_ancestor != revision


@dataclass(frozen=True)
class VersionTable:
    """Where a project keeps its version table (as its env.py configures it)."""

    name: str = DEFAULT_VERSION_TABLE
    schema: str | None = None

    def excluded_tables(self, schema: str = "public") -> tuple[str, ...]:
        """Table names to leave out of seeding and snapshots of ``schema``: the version
        table and the toolkit's own stash."""
        names = {DEFAULT_VERSION_TABLE, STASH_TABLE, PROGRESS_TABLE}
        if (self.schema or "public") == schema:
            names.add(self.name)
        return tuple(sorted(names))


@dataclass(frozen=True)
class Position:
    """The revisions a database is at, read through the project's env.py."""

    heads: tuple[str, ...]
    table: VersionTable


def position(
    project: Project, url: str | None, *, connection: Connection | None = None
) -> Position:
    """Run the project's env.py (as ``alembic current`` does) and read the version table
    it configures (``version_table``, ``version_table_schema``). Changes nothing."""
    cfg = project.config(url, connection=connection)
    script = project.script(cfg)
    found: list[Position] = []

    def read(rev: Any, context: MigrationContext) -> list[Any]:
        del rev
        table = VersionTable(name=context.version_table, schema=context.version_table_schema)
        found.append(Position(tuple(context.get_current_heads()), table))
        return []

    # Reading changes nothing: a commit by env.py on a lent connection is a no-op.
    reading = project.running_code(
        allowed=[url] if url is not None else [], connection=connection, commit_allowed=False
    )
    with reading:
        try:
            with EnvironmentContext(cfg, script, fn=read, dont_mutate=True):
                script.run_env()
        except CommandError as exc:
            raise UsageError(f"{project.label}: {exc}") from None
    if not found:
        raise UsageError(
            f"{project.label}: env.py did not run the migrations online, so the version "
            "table could not be read"
        )
    return found[-1]


def current(
    project: Project, url: str | None, *, connection: Connection | None = None
) -> tuple[str, ...]:
    """The revision ids the database is at (empty before the first upgrade)."""
    return position(project, url, connection=connection).heads


def history(project: Project) -> list[RevisionInfo]:
    """Every revision, base first; ``UsageError`` when there is none."""
    revisions = list(project.script().walk_revisions("base", "heads"))
    if not revisions:
        raise UsageError(f"{project.label}: no revisions found")
    revisions.reverse()
    return [
        RevisionInfo(
            revision=r.revision,
            down_revision=_as_tuple(r.down_revision),
            message=(r.doc or "").strip(),
        )
        for r in revisions
    ]


def _revision_count(script: ScriptDirectory) -> int:
    return sum(1 for _ in script.walk_revisions("base", "heads"))


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
