"""Keep a project's own code on the database lossless was given.

While Alembic runs a team's ``env.py`` and revisions, every connection that code opens is
checked before it is made: SQLAlchemy's ``do_connect`` event on every engine, plus
``psycopg.connect`` (and ``psycopg2.connect`` when installed) for code that bypasses
SQLAlchemy. A connection to another host, port or database is refused with
``ForeignDatabaseError`` (exit 2) naming the file that asked for it and the masked target.
An ``env.py`` that reads the application's own URL (a settings object, an environment
variable) would otherwise migrate the application's database instead of the one given.

``lend`` hands an open connection to ``env.py`` in the form each documented pattern expects:
a ``Connection`` that also answers ``.connect()`` (the ``connectable = config.attributes.get(
"connection", None) or engine_from_config(...)`` form) without closing it afterwards.
"""

from __future__ import annotations

import getpass
import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import Connection, Engine, event

from toolkit.errors import UsageError
from toolkit.postgres.url import parse_url
from toolkit.project_code import shown_path

#: The page of the docs with the few-line env.py fix.
FIX_DOC = "docs/projects.md#envpy-must-use-the-database-it-is-given"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_LIBPQ_KEYS = ("host", "hostaddr", "port", "dbname", "user")


class ForeignDatabaseError(UsageError):
    """The project's code tried to connect to a database lossless was not given."""


@dataclass(frozen=True)
class Endpoint:
    """Where a connection goes: host (or socket folder), port, database (libpq defaults)."""

    host: str
    port: int
    database: str
    user: str

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> Endpoint:
        """From libpq parameters, with libpq's defaults (``PGHOST``, ``PGPORT``...)."""

        def get(key: str, env: str) -> str:
            value = params.get(key)
            return str(value) if value not in (None, "") else os.environ.get(env, "")

        user = get("user", "PGUSER") or getpass.getuser()
        host = get("host", "PGHOST") or get("hostaddr", "PGHOSTADDR") or "(local socket)"
        return cls(
            host=host,
            port=int(get("port", "PGPORT") or 5432),
            database=get("dbname", "PGDATABASE") or user,
            user=user,
        )

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parsed = parse_url(url)
        params: dict[str, object] = {
            "host": parsed.host,
            "port": parsed.port,
            "dbname": parsed.database,
            "user": parsed.username,
        }
        for key in _LIBPQ_KEYS:
            value = parsed.query.get(key)
            if value and not params.get(key):
                params[key] = value if isinstance(value, str) else value[-1]
        return cls.from_params(params)

    def same_database(self, other: Endpoint) -> bool:
        """Same port and database, same host (the loopback names count as one)."""
        hosts = {self.host, other.host}
        same_host = len(hosts) == 1 or hosts <= _LOOPBACK
        return same_host and self.port == other.port and self.database == other.database

    def describe(self) -> str:
        """``postgresql://user@host:port/database`` (never a password)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{self.user}@{host}:{self.port}/{self.database}"


class ConnectionGuard:
    """While active, refuses every new connection that is not to one of ``allowed``.

    ``project_dirs`` are the folders of the project's own code (to name the file that
    asked); ``why`` replaces the standard explanation (e.g. preflight allows no new
    connection at all). A refusal swallowed by the project's code is raised on exit.
    """

    def __init__(
        self,
        allowed: Sequence[str],
        *,
        project_dirs: Sequence[Path] = (),
        why: str | None = None,
    ) -> None:
        self.allowed = tuple(Endpoint.from_url(u) for u in allowed)
        self.project_dirs = tuple(p.resolve() for p in project_dirs)
        self.why = why
        self.refused: ForeignDatabaseError | None = None
        self._undo: list[Callable[[], None]] = []

    def check(self, params: Mapping[str, object]) -> None:
        """Raise ``ForeignDatabaseError`` unless ``params`` (libpq) name an allowed database."""
        target = Endpoint.from_params(params)
        if any(target.same_database(a) for a in self.allowed):
            return
        where = self._asker()
        if self.why is not None:
            reason = self.why
        else:
            given = ", ".join(a.describe() for a in self.allowed) or "none"
            reason = (
                f"not the database lossless was given ({given}); make env.py connect to "
                "config.get_main_option('sqlalchemy.url') or use "
                f"config.attributes['connection'] (see {FIX_DOC})"
            )
        self.refused = ForeignDatabaseError(
            f"{where} tried to connect to {target.describe()}: refused, {reason}"
        )
        raise self.refused

    def _asker(self) -> str:
        return asker(self.project_dirs)

    def __enter__(self) -> ConnectionGuard:
        event.listen(Engine, "do_connect", self._on_sqlalchemy_connect)
        self._undo.append(lambda: event.remove(Engine, "do_connect", self._on_sqlalchemy_connect))
        self._patch_driver("psycopg")
        self._patch_driver("psycopg2")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._undo:
            self._undo.pop()()
        if self.refused is not None and error is None:
            raise self.refused

    def _on_sqlalchemy_connect(
        self, dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        del dialect, record
        dsn = cargs[0] if cargs and isinstance(cargs[0], str) else ""
        self.check(_libpq_params(dsn, cparams))

    def _patch_driver(self, name: str) -> None:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            return
        module: Any = importlib.import_module(name)
        original = module.connect

        def connect(dsn: str | None = None, *args: Any, **kwargs: Any) -> Any:
            self.check(_libpq_params(dsn or kwargs.get("conninfo") or "", kwargs))
            return original(dsn, *args, **kwargs) if dsn is not None else original(*args, **kwargs)

        module.connect = connect
        self._undo.append(lambda: setattr(module, "connect", original))
        if name == "psycopg":
            klass = module.Connection
            method = klass.__dict__["connect"]

            def class_connect(cls: Any, conninfo: str = "", *args: Any, **kwargs: Any) -> Any:
                self.check(_libpq_params(conninfo, kwargs))
                return method.__func__(cls, conninfo, *args, **kwargs)

            klass.connect = classmethod(class_connect)
            self._undo.append(lambda: setattr(klass, "connect", method))


def asker(project_dirs: Sequence[Path]) -> str:
    """The innermost frame of the project's own code on the stack: ``file line N``."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename)
        if any(path.is_relative_to(d) for d in project_dirs):
            return f"{shown_path(path)} line {frame.lineno}"
    return "the project's code"


def _libpq_params(dsn: str, extra: Mapping[str, Any]) -> dict[str, object]:
    kwargs = {k: v for k, v in extra.items() if k in _LIBPQ_KEYS and v is not None}
    try:
        return dict(conninfo_to_dict(make_conninfo(dsn, **kwargs)))
    except Exception:  # an unparseable DSN: the driver will say so; judge what we have
        return dict(kwargs)


class _LentConnection(Connection):
    """A connection lent to ``env.py``: ``.connect()`` returns it, closing it is a no-op.

    With ``commit_allowed`` false (preflight), a commit by env.py is a no-op: its work
    stays in the caller's transaction, which the caller rolls back (and proves it did).
    """

    __slots__ = ()

    def connect(self) -> _LentConnection:
        return self

    def close(self) -> None:
        return None

    def commit(self) -> None:
        if _LENT.get(id(self), True):
            super().commit()


_LENT: dict[int, bool] = {}


_ENDS_TRANSACTION = re.compile(r"^\s*(COMMIT|END|ROLLBACK|ABORT)\b(?!\s+TO\b)", re.I)


def _commit_refuser(project_dirs: Sequence[Path]) -> Callable[..., None]:
    def refuse(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        del conn, cursor, parameters, context, many
        if not _ENDS_TRANSACTION.match(statement):
            return
        raise UsageError(
            f"{asker(project_dirs)} sends {statement.strip().split()[0].upper()}: "
            "preflight runs the "
            "step in one transaction and rolls it back, which that would defeat; nothing "
            "was committed (check such a revision on a copy of the database instead)"
        )

    return refuse


@contextmanager
def lend(
    connection: Connection | None,
    *,
    commit_allowed: bool = True,
    project_dirs: Sequence[Path] = (),
) -> Iterator[None]:
    """Let ``connection`` be used as env.py's ``connectable`` for the duration.

    Without ``commit_allowed``, a statement that would end the transaction (``COMMIT``,
    e.g. before ``CREATE INDEX CONCURRENTLY``) is refused before it is sent.
    """
    if connection is None:
        yield
        return
    original = connection.__class__
    connection.__class__ = _LentConnection
    _LENT[id(connection)] = commit_allowed
    refuse = _commit_refuser(project_dirs)
    if not commit_allowed:
        event.listen(connection, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        if not commit_allowed:
            event.remove(connection, "before_cursor_execute", refuse)
        _LENT.pop(id(connection), None)
        connection.__class__ = original


def guarded(
    allowed: Sequence[str],
    *,
    project_dirs: Sequence[Path] = (),
    why: str | None = None,
) -> AbstractContextManager[ConnectionGuard]:
    """A ``ConnectionGuard`` as a context manager."""
    return ConnectionGuard(allowed, project_dirs=project_dirs, why=why)
