"""The group's shared state and the option types and decorators the commands stack."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from toolkit.cli.safety import clean
from toolkit.commands import RunSettings

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


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
    return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]


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


pass_run = click.make_pass_decorator(Run)


def json_option(fn: F) -> F:
    """``--json``: print the result as JSON for a machine."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for a machine.")(fn)


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
