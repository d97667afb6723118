"""Run Alembic for a project: a bundled scenario's script directory or a team's alembic.ini.

The thin layer between orchestration (``commands``, ``roundtrip``) and Alembic's own
``command`` module: builds the ``Config``, validates revisions, collects the operations'
``OpResult``s, and turns Alembic's errors into the toolkit's.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from toolkit.errors import MissingExtensionError, UsageError
from toolkit.ops.results import OpResult, recording
from toolkit.postgres.url import sqlalchemy_url
from toolkit.scenario import Scenario


@dataclass(frozen=True)
class Project:
    """Where the revisions come from."""

    label: str
    script_location: Path | None = None
    ini_path: Path | None = None
    ini_section: str = "alembic"

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> Project:
        return cls(label=scenario.name, script_location=scenario.script_location)

    @classmethod
    def from_ini(cls, path: str | Path, *, section: str = "alembic") -> Project:
        ini = Path(path).resolve()
        if not ini.is_file():
            raise UsageError(f"no such Alembic config file: {path}")
        return cls(label=ini.name, ini_path=ini, ini_section=section)

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

    def script(self) -> ScriptDirectory:
        try:
            return ScriptDirectory.from_config(self.config())
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


def _run(
    fn_name: str,
    project: Project,
    url: str | None,
    revision: str,
    connection: Connection | None,
    x: Mapping[str, str] | None,
) -> list[OpResult]:
    cfg = project.config(url, connection=connection, x=x)
    with recording() as results:
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
) -> list[OpResult]:
    """Upgrade to ``revision``; returns what the toolkit's operations reported."""
    return _run("upgrade", project, url, resolve_revision(project, revision), connection, x)


def downgrade(
    project: Project,
    url: str | None,
    revision: str,
    *,
    connection: Connection | None = None,
    x: Mapping[str, str] | None = None,
) -> list[OpResult]:
    """Downgrade to ``revision``; returns what the toolkit's operations reported."""
    return _run("downgrade", project, url, resolve_revision(project, revision), connection, x)


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
    cfg = project.config(url or "postgresql://offline/offline", output=output, x=x)
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


def current(project: Project, url: str) -> tuple[str, ...]:
    """The revision ids the database is at (empty before the first upgrade)."""
    del project  # the version table is Alembic's default one for every project we run
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def history(project: Project) -> list[RevisionInfo]:
    """Every revision, base first."""
    revisions = list(project.script().walk_revisions("base", "heads"))
    revisions.reverse()
    return [
        RevisionInfo(
            revision=r.revision,
            down_revision=_as_tuple(r.down_revision),
            message=(r.doc or "").strip(),
        )
        for r in revisions
    ]


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
