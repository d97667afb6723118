"""Results on stdout, cleaned of passwords; everything else a command's run prints, on stderr.

While a command runs, ``sys.stdout`` and the logging handlers writing to it are pointed at
stderr (``project_output_on_stderr``): a team's ``env.py`` that prints, or whose logging
configuration writes to stdout, cannot corrupt the results (JSON, SQL) a machine reads.
Results are written to the real stdout.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

from toolkit.cli.safety import clean

#: Data would be lost, was refused, or a proof failed (see ``toolkit.cli.app``).
EXIT_DATA = 1

#: Every JSON document names its shape and version: ``lossless.<command>/1``.
JSON_VERSION = 1

_results: list[TextIO] = []


def json_format(name: str) -> str:
    """The ``format`` of a JSON document: ``lossless.upgrade/1``."""
    return f"lossless.{name}/{JSON_VERSION}"


def emit(text: str, *, nl: bool = True, verbatim: bool = False) -> None:
    """A result on stdout, passwords removed (``verbatim``: as is, e.g. SQL for review)."""
    click.echo(text if verbatim else clean(text), nl=nl, file=_results[-1] if _results else None)


def emit_json(name: str, data: dict[str, Any]) -> None:
    """A result as a JSON object on stdout (``format`` first), passwords removed."""
    emit(json.dumps({"format": json_format(name), **data}, indent=2, default=str))


@contextmanager
def project_output_on_stderr() -> Iterator[None]:
    """Inside the block, stdout is stderr for everyone but ``emit``."""
    real = sys.stdout
    handlers = [
        h
        for h in _every_handler()
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is real
    ]
    _results.append(real)
    sys.stdout = sys.stderr
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout = real
        _results.pop()
        for handler in handlers:
            handler.setStream(real)


def _every_handler() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]
