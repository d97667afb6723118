"""The toolkit's error hierarchy: one root, a few precise subclasses.

The CLI maps each class to a message and an exit code: ``exit_code`` 2 for usage and
connection problems, 1 when data would be lost or a verification failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class ToolkitError(Exception):
    """Root of every error the toolkit raises on purpose.

    Picklable whatever a subclass's ``__init__`` takes (a round trip's worker processes
    send them back): rebuilt from the message and the instance's attributes.
    """

    exit_code: int = 2

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(kind: type[ToolkitError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class UsageError(ToolkitError):
    """Bad arguments: unknown scenario or revision, malformed range, missing option."""

    exit_code = 2


class ProvisioningError(ToolkitError):
    """No PostgreSQL server could be had: unreachable URL, failed start, bad credentials.

    Messages never contain a password: build them with ``toolkit.postgres.mask_url``.
    """

    exit_code = 2


class MissingExtensionError(ProvisioningError):
    """A revision needs an extension the server does not have (``CREATE EXTENSION`` failed).

    A property of the server, not of the migration nor the data: the way out is a server
    that has the extension. The embedded PostgreSQL 18 has no ``uuid-ossp``, ``pgcrypto``
    or PostGIS.
    """

    exit_code = 2

    #: PostgreSQL's messages for an extension that is not installed on the server (15 and
    #: later; 14 and earlier).
    _MESSAGES = (
        re.compile(r'extension "([^"]+)" is not available'),
        re.compile(r'could not open extension control file "[^"]*/([^"/]+)\.control"'),
    )

    def __init__(self, extension: str, *, needed_by: str) -> None:
        self.extension = extension
        super().__init__(
            f'extension "{extension}" is not available on this server, and {needed_by} '
            "need it (the embedded PostgreSQL has no uuid-ossp, pgcrypto or PostGIS); use a "
            "server that has it: --postgres system (the PostgreSQL installed on this machine), "
            "--url postgresql://... or --postgres docker[:VERSION]"
        )

    @classmethod
    def named_in(cls, message: str) -> str | None:
        """The extension a database error message says is missing, if it says so."""
        for pattern in cls._MESSAGES:
            match = pattern.search(message)
            if match:
                return match.group(1)
        return None


class OfflineModeError(ToolkitError):
    """An operation needs a live database (reflection, data checks) but runs in ``--sql`` mode."""

    exit_code = 2


class LockTimeoutError(ToolkitError):
    """Another run holds the migration lock on this database and did not release it in time."""

    exit_code = 2


@dataclass(frozen=True)
class Remedy:
    """How to proceed past a refusal: ``text`` for people; ``argument`` (an operation's
    argument that decides it, e.g. the ``on_missing`` policy) and its ``choices`` for
    programs (the CLI turns them into the ``-x`` options a revision reads)."""

    text: str
    argument: str | None = None
    choices: tuple[str, ...] = ()


def refusal_parts(where: str, reason: str, remedy: str | None) -> tuple[str, str, str]:
    """The refusal sentence around its count and samples: ``head + count + middle
    [+ " (e.g. " + samples + ")"] + tail``. Built once for the exception raised online and
    the offline guard (``toolkit.sql.checks.guard_block``), so both say the same."""
    return f"refused: {where}: ", f" row(s) {reason}", f"; {remedy}" if remedy else ""


class DataRefusedError(ToolkitError):
    """An operation refused to run because it would lose or corrupt data.

    Raised before anything is changed. Names the table, the column, how many rows are
    concerned and a few sample keys so that a DBA can find them. ``code`` is stable (see
    ``toolkit.ops.refusals``), ``remedy`` says how to proceed; ``hint`` is its text.
    """

    exit_code = 1

    def __init__(
        self,
        reason: str,
        *,
        table: str,
        column: str | None,
        count: int,
        samples: Sequence[object] = (),
        hint: str | None = None,
        code: str | None = None,
        remedy: Remedy | None = None,
    ) -> None:
        self.reason = reason
        self.table = table
        self.column = column
        self.count = count
        self.samples = tuple(samples)
        self.code = code
        self.remedy = remedy
        self.hint = hint if hint is not None or remedy is None else remedy.text
        where = f"{table}.{column}" if column else table
        head, middle, tail = refusal_parts(where, reason, self.hint)
        sample_text = ", ".join(str(s) for s in self.samples)
        examples = f" (e.g. {sample_text})" if sample_text else ""
        super().__init__(f"{head}{count}{middle}{examples}{tail}")


class VerificationError(ToolkitError):
    """A round trip or an invariant showed that data was lost or changed."""

    exit_code = 1


class MigrationFailedError(ToolkitError):
    """A revision failed in the database (an SQL error, a statement timeout).

    Each revision runs in its own transaction, so the failed one left nothing behind; the
    message names it and the revision the database is at now.
    """

    exit_code = 1


class OnlineAbortedError(ToolkitError):
    """An online run was abandoned on request (``-x online=abort``): what it had made was
    removed and the revision was not applied (the database stays where it was)."""

    exit_code = 0


class ConnectionLostError(ToolkitError):
    """The connection to the server was lost while a revision ran or committed.

    The message names the revision, what is known of its outcome and how to check it.
    """

    exit_code = 2


class InterruptedRunError(ToolkitError):
    """The run was interrupted (Ctrl-C); the message says where the database is."""

    exit_code = 130
