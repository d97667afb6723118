"""The group's shared state and the option types and decorators the commands stack."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import click

from toolkit.cli.output import project_output_on_stderr
from toolkit.cli.safety import clean, remember_url
from toolkit.commands import RunSettings
from toolkit.errors import UsageError
from toolkit.postgres.url import mask_url, parse_url

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}
#: PostgreSQL's timeouts are a 32-bit count of milliseconds.
MAX_TIMEOUT_MS = 2**31 - 1


def duration(ctx: click.Context, param: click.Parameter, value: str | float) -> float:
    """Option callback: ``500ms``, ``10s``, ``5min``, ``1h`` or bare seconds -> seconds.

    0 means no limit.
    """
    del ctx, param
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.fullmatch(value)
    if match is None:
        raise click.BadParameter(
            f"{value!r} is not a duration (e.g. 500ms, 10s, 5min, 1h; 0: no limit)"
        )
    seconds = float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
    if round(seconds * 1000) > MAX_TIMEOUT_MS:
        raise click.BadParameter(
            f"{value!r} is more than PostgreSQL accepts ({MAX_TIMEOUT_MS}ms, a little over "
            f"{MAX_TIMEOUT_MS // 8_640_000 / 10:g} days); 0 means no limit"
        )
    return seconds


def postgres_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Option callback: a PostgreSQL URL that names at least a server or a database."""
    del ctx, param
    if not value:
        return None
    remember_url(value)
    try:
        parsed = parse_url(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None
    if not (parsed.host or parsed.port or parsed.username or parsed.database or parsed.query):
        raise click.BadParameter(
            f"{mask_url(value)} names no server and no database "
            "(e.g. postgresql://user@host:5432/dbname)"
        )
    return value


_RELATIVE_DOWN = re.compile(r"-\d+")


class TakesRelativeRevision(click.Command):
    """A command whose REVISION may be Alembic's relative ``-1``, not an unknown option.

    Such arguments are moved behind a ``--`` before click parses, so that
    ``downgrade -1 --json`` works as a DBA would type it.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Move ``-N`` arguments (before any ``--``) behind a ``--``."""
        end = args.index("--") if "--" in args else len(args)
        relative = [a for a in args[:end] if _RELATIVE_DOWN.fullmatch(a)]
        if relative:
            rest = [a for a in args[:end] if not _RELATIVE_DOWN.fullmatch(a)]
            args = [*rest, "--", *relative, *args[end + 1 :]]
        return super().parse_args(ctx, args)


@dataclass(frozen=True)
class Run:
    """What every command gets: the settings and where progress lines go."""

    settings: RunSettings
    quiet: bool = False

    def progress(self, line: str) -> None:
        """A progress line, on stderr (results go to stdout)."""
        if not self.quiet:
            click.echo(clean(line), err=True)


def pass_run(fn: F) -> F:
    """Pass the group's ``Run``; while the command runs, only results go to stdout."""

    @functools.wraps(fn)
    def run_with_output_on_stderr(*args: Any, **kwargs: Any) -> Any:
        with project_output_on_stderr():
            return fn(*args, **kwargs)

    return cast(F, click.make_pass_decorator(Run)(run_with_output_on_stderr))


def json_option(fn: F) -> F:
    """``--json``: print the result as JSON for a machine (errors too)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for a machine (errors too)."
    )(fn)


def x_arguments(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """Option callback: ``-x NAME=VALUE`` pairs -> ``{NAME: VALUE}`` (a later NAME wins).

    The same rule as Alembic's ``context.get_x_argument(as_dictionary=True)``, except that
    an option without ``=`` is an error here rather than a NAME with an empty VALUE.
    """
    del ctx, param
    parsed: dict[str, str] = {}
    for item in values:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(
                f"{item!r} is not NAME=VALUE (e.g. -x on_missing=keep_null)", param_hint="'-x'"
            )
        parsed[name] = value
    return parsed


def x_option(fn: F) -> F:
    """``-x NAME=VALUE``, repeatable: options the revisions read, as Alembic's ``-x``."""
    return click.option(
        "-x",
        "x",
        multiple=True,
        metavar="NAME=VALUE",
        callback=x_arguments,
        help="An option the revisions read (Alembic's -x, context.get_x_argument); "
        "repeatable, e.g. -x on_missing=keep_null.",
    )(fn)


def rows_option(*, default: int | None, minimum: int = 1) -> Callable[[F], F]:
    """``--rows N`` and ``--seed S``: size and seed of deterministic test data."""

    def decorate(fn: F) -> F:
        fn = click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the deterministic data generator.",
        )(fn)
        return click.option(
            "--rows",
            type=click.IntRange(min=minimum),
            default=default,
            required=default is None,
            show_default=default is not None,
            help="How many rows of the main tables to generate.",
        )(fn)

    return decorate


def online_options(fn: F) -> F:
    """``--online`` and ``--batch-size N``: the operations' online mode (``-x online=true``,
    ``-x online_batch_size=N``)."""
    fn = click.option(
        "--abort",
        is_flag=True,
        help="With --online: undo what an unfinished online run made (triggers, new"
        " structures, progress); the revision stays unapplied.",
    )(fn)
    fn = click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=None,
        help="Rows per backfill batch in online mode (default 5000).",
    )(fn)
    return click.option(
        "--online",
        is_flag=True,
        help="Run the operations in short phases (expand, backfill in batches, constraints,"
        " contract) while the application keeps writing; a rerun resumes (docs/online.md).",
    )(fn)


def with_online(
    x: dict[str, str], online: bool, batch_size: int | None, abort: bool = False
) -> dict[str, str]:
    """``x`` with the ``-x`` options ``--online``, ``--batch-size`` and ``--abort`` stand for."""
    out = dict(x)
    if abort and not online:
        raise click.UsageError("--abort undoes an unfinished online run: add --online")
    if online:
        out["online"] = "abort" if abort else "true"
    if batch_size is not None:
        if not online and out.get("online", "").lower() not in ("1", "true", "yes", "on"):
            raise click.UsageError("--batch-size is for online mode: add --online")
        out["online_batch_size"] = str(batch_size)
    return out
