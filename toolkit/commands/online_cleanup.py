"""A downgrade after an online upgrade that did not finish: undo that run first.

An online upgrade that failed, was killed or lost its connection leaves the database at
the old revision with what its committed phases made: mirror triggers, half-filled new
structures, progress rows (docs/online.md). ``upgrade --online`` resumes it; a
``downgrade`` cleans it up: before going down, it undoes the unfinished run exactly as
``upgrade <that revision> --online --abort`` would (the abort's own checks and locks), and
says so. Only runs an upgrade recorded as such are undone this way; an unfinished online
*downgrade* is resumed by ``downgrade --online`` or undone with ``--abort``, and the
operations refuse a plain run over it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from toolkit.commands.server import Progress, open_connection
from toolkit.errors import OnlineAbortedError, UsageError
from toolkit.migrate import Project
from toolkit.sql import online as osql
from toolkit.sql.run import execute


@dataclass(frozen=True)
class UnfinishedRun:
    """One operation's online run under way, as its progress row records it."""

    schema: str
    table: str
    column: str
    operation: str | None
    phase: str | None
    direction: str | None

    def describe(self) -> str:
        return (
            f"{self.operation or 'an operation'} on {self.schema}.{self.table}.{self.column}"
            f" (phase {self.phase!r})"
        )


def unfinished_runs(conn: Connection) -> list[UnfinishedRun]:
    """Every online run under way in the database, in every schema."""
    found = []
    for (schema,) in execute(conn, osql.progress_schemas()).all():
        found += [
            UnfinishedRun(schema, *row) for row in execute(conn, osql.progress_rows(schema)).all()
        ]
    conn.rollback()
    return found


def undo_unfinished_upgrade(
    project: Project,
    url: str,
    current: tuple[str, ...],
    x: Mapping[str, str],
    progress: Progress,
    undo: Callable[[str, Mapping[str, str]], object],
) -> None:
    """Before a downgrade: undo an unfinished online upgrade of the revision above
    ``current`` (``undo`` runs ``upgrade <revision> -x online=abort``)."""
    if x.get("online", "").lower() == "abort":
        return
    with open_connection(url) as conn:
        runs = [r for r in unfinished_runs(conn) if r.direction == "upgrade"]
    if not runs:
        return
    listed = "; ".join(r.describe() for r in runs)
    above = _revisions_above(project, current)
    if len(above) != 1:
        raise UsageError(
            f"an online upgrade did not finish ({listed}) and the revision it was applying"
            f" is not the only one above {', '.join(current) or 'base'}"
            f" ({', '.join(above) or 'none'}): undo it with `lossless upgrade <revision>"
            " --online --abort`, then downgrade; nothing was changed"
        )
    progress(f"an online upgrade to {above[0]} did not finish ({listed}): undoing it first")
    try:
        undo(above[0], {**x, "online": "abort"})
    except OnlineAbortedError as done:
        progress(str(done))
    with open_connection(url) as conn:
        left = [r for r in unfinished_runs(conn) if r.direction == "upgrade"]
    if left:
        raise UsageError(
            "the unfinished online upgrade could not be undone: still under way: "
            + "; ".join(r.describe() for r in left)
            + "; nothing was downgraded"
        )


def _revisions_above(project: Project, current: tuple[str, ...]) -> list[str]:
    """The revisions whose parent is one of ``current`` (base: those without a parent)."""
    script = project.script()
    if not current:
        return sorted(r.revision for r in script.walk_revisions() if not r.down_revision)
    above: set[str] = set()
    for head in current:
        revision = script.get_revision(head)
        if revision is not None:
            above.update(revision.nextrev)
    return sorted(above)
