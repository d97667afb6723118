"""URL helpers: masking passwords, naming databases, driver selection. No I/O."""

from __future__ import annotations

import getpass
import os
import re
from urllib.parse import urlsplit

from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from toolkit.errors import UsageError

_DSN_PASSWORD = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")


def parse_url(url: str) -> URL:
    """Parse a PostgreSQL URL, accepting ``postgresql://`` and ``postgres://`` spellings."""
    text = url.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = make_url(text)
    except ArgumentError as exc:
        raise UsageError(f"not a PostgreSQL URL: {mask_url(url)}") from exc
    except ValueError:  # SQLAlchemy's int() of the port
        port = urlsplit(text).netloc.rpartition("@")[2].rpartition(":")[2]
        raise UsageError(
            f"not a PostgreSQL URL: {mask_url(url)}: the port {port!r} is not a number"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise UsageError(f"not a PostgreSQL URL: {mask_url(url)}")
    return parsed


def sqlalchemy_url(url: str | URL) -> URL:
    """The URL with the psycopg 3 driver, ready for ``create_engine``."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    return parsed.set(drivername="postgresql+psycopg")


def libpq_url(url: str | URL) -> str:
    """The URL as a libpq connection string (key=value form, so query options such as
    ``options=-c x=1`` survive: libpq does not decode SQLAlchemy's ``+`` for spaces)."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    params: dict[str, str] = {}
    for key, value in parsed.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    for key, part in (
        ("host", parsed.host),
        ("port", parsed.port),
        ("dbname", parsed.database),
        ("user", parsed.username),
        ("password", parsed.password),
    ):
        if part is not None and part != "":
            params[key] = str(part)
    return make_conninfo(**params)


def with_database(url: str | URL, database: str) -> str:
    """The same server and credentials, another database."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    return parsed.set(database=database).render_as_string(hide_password=False)


def database_name(url: str | URL) -> str:
    """The database a URL connects to.

    When the URL names none, libpq's choice: ``PGDATABASE``, else the user name (the URL's,
    else ``PGUSER``, else the login name).
    """
    parsed = url if isinstance(url, URL) else parse_url(url)
    query = {k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()}
    named = parsed.database or query.get("dbname") or os.environ.get("PGDATABASE")
    if named:
        return named
    return parsed.username or query.get("user") or os.environ.get("PGUSER") or getpass.getuser()


def mask_url(url: str | URL | None) -> str:
    """The URL with its password replaced by ``***``; works on malformed input too."""
    if url is None:
        return "<none>"
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    masked = _URL_PASSWORD.sub(r"\1***\3", url)
    return _DSN_PASSWORD.sub(r"\1***", masked)


def scrub(text: str, url: str | URL | None) -> str:
    """Remove the URL's password from any text (driver messages can echo parts of a DSN)."""
    if url is None:
        return text
    password: str | None
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
        password = parsed.password if isinstance(parsed.password, str) else None
    except (ArgumentError, ValueError):
        password = None
    if password:
        text = text.replace(password, "***")
    return _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\3", text))
