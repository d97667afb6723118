"""Results on stdout, cleaned of passwords; the exit code of a negative result."""

from __future__ import annotations

import json
from typing import Any

import click

from toolkit.cli.safety import clean

#: Data would be lost, was refused, or a proof failed (see ``toolkit.cli.app``).
EXIT_DATA = 1


def emit(text: str) -> None:
    """A result on stdout, passwords removed."""
    click.echo(clean(text))


def emit_json(data: Any) -> None:
    """A result as JSON on stdout, passwords removed."""
    emit(json.dumps(data, indent=2, default=str))
