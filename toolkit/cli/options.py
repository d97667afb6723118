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
