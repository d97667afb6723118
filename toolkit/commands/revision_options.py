"""The ``-x NAME=VALUE`` options a revision reads, and refusals that say how to pass them.

An operation's refusal remedy names one of its own arguments (``on_missing``, read from
``DataRefusedError.remedy``, never from the message text). A DBA
at the command line cannot set an operation's argument; what they can set is a ``-x``
option, and only when the revision reads one (``context.get_x_argument``) and turns it into
that argument. So the hint is rewritten for the revision that refused: the ``-x`` options to
rerun with where the revision reads them, and a plain statement where it does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from alembic.util.exc import CommandError

from toolkit.commands.server import Progress
from toolkit.commands.watch import Step
from toolkit.errors import DataRefusedError
from toolkit.migrate import Project
from toolkit.ops.refusals import FILL_VALUE as FILL_VALUE_ARGUMENT
from toolkit.ops.refusals import ON_MISSING

#: The operations' policy for rows that cannot get a NOT NULL value back, and the argument
#: holding the value of its ``fill`` mode (``toolkit.ops.refusals``).
POLICY = ON_MISSING
FILL_VALUE = FILL_VALUE_ARGUMENT


def describe_x(x: Mapping[str, str]) -> str:
    """``-x a=1 -x b=2``, or an empty string without options."""
    return " ".join(f"-x {name}={value}" for name, value in x.items())


def with_x(x: Mapping[str, str]) -> str:
    """`` with -x a=1`` to append to a line about a run, or nothing without options."""
    return f" with {describe_x(x)}" if x else ""


def explain_refusal(exc: DataRefusedError, project: Project, step: Step | None) -> DataRefusedError:
    """``exc`` with a hint a command-line user can act on, when its remedy is a policy.

    ``step`` is the revision that was running. A revision "reads" an option when its script
    calls ``get_x_argument`` and names the option (``on_missing``; ``fill_<column>`` for
    the fill value of ``column``, as migration-014 does).
    """
    hint = exc.hint or ""
    argument = exc.remedy.argument if exc.remedy is not None else None
    about_policy, about_fill = argument == POLICY, argument == FILL_VALUE
    if step is None or not (about_policy or about_fill):
        return exc
    revision = step.revision
    source = revision_source(project, revision)
    if source is None:
        return exc
    fill = _fill_option(source, exc.column)
    if about_policy and reads_x_option(source, POLICY):
        fill_hint = f"-x {POLICY}=fill -x {fill}=ID" if fill else f"-x {POLICY}=fill"
        hint = (
            f"revision {revision} reads this policy from -x: rerun with "
            f"-x {POLICY}=keep_null (column left nullable) or {fill_hint} "
            "(an id that exists) to proceed"
        )
    elif about_fill and not about_policy and fill and reads_x_option(source, fill):
        hint = f"revision {revision} reads the fill value from -x {fill}=ID: give an id that exists"
    else:
        hint = (
            f"{hint} (an argument of the operation in revision {revision}, which does not "
            "read it from -x: only the revision can set it)"
        )
    return DataRefusedError(
        exc.reason,
        table=exc.table,
        column=exc.column,
        count=exc.count,
        samples=exc.samples,
        hint=hint,
        code=exc.code,
        remedy=exc.remedy,
    )


#: The ``-x`` options the toolkit's operations read themselves (``toolkit.ops.online``).
TOOLKIT_X_OPTIONS = (
    "online",
    "online_batch_size",
    "online_batch_ms",
    "online_lock_timeout_ms",
    "online_retries",
)


def unread_x_options(project: Project, x: Mapping[str, str]) -> tuple[str, ...]:
    """The names in ``x`` that no revision script (nor ``env.py``) of ``project`` reads.

    Most likely a typo: Alembic ignores such an option silently, and a misspelt
    ``keep_extra_links`` would let a downgrade lose what it was asked to keep.
    """
    x = {name: value for name, value in x.items() if name not in TOOLKIT_X_OPTIONS}
    if not x:
        return ()
    script = project.script()
    paths = [r.path for r in script.walk_revisions("base", "heads")]
    paths.append(str(Path(script.dir) / "env.py"))
    sources = [text for text in map(_read, paths) if text is not None]
    return tuple(name for name in x if not any(reads_x_option(s, name) for s in sources))


def warn_unread(project: Project, x: Mapping[str, str], progress: Progress) -> None:
    """A progress line per ``-x`` option nothing reads."""
    for name in unread_x_options(project, x):
        progress(
            f"warning: no revision of {project.label} reads -x {name}: it has no effect (misspelt?)"
        )


def reads_x_option(source: str, name: str) -> bool:
    """Whether a revision's ``source`` reads ``-x`` options and mentions ``name``."""
    return "get_x_argument" in source and re.search(rf"\b{re.escape(name)}\b", source) is not None


def revision_source(project: Project, revision: str) -> str | None:
    """The text of ``revision``'s script, or ``None`` when it cannot be read."""
    try:
        script = project.script().get_revision(revision)
    except CommandError:
        return None
    return None if script is None else _read(script.path)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _fill_option(source: str, column: str | None) -> str | None:
    """The ``-x`` option naming the fill value of ``column`` (``fill_<column>``), if read."""
    if not column:
        return None
    name = f"fill_{column}"
    return name if re.search(rf"\b{re.escape(name)}\b", source) else None
