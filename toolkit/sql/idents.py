"""Quoting of identifiers, literals and type expressions: the only way names enter SQL.

Builders compose ``psycopg.sql`` objects from constant templates; every name goes through
``ident`` (SQLAlchemy's PostgreSQL identifier preparer, which quotes only where needed, so
offline scripts read like hand-written ones), every string value through ``literal``, and
every type through ``type_clause`` (checked). ``render`` turns the result into text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from psycopg import sql
from sqlalchemy import String
from sqlalchemy.dialects.postgresql import psycopg as _psycopg
from sqlalchemy.types import TypeEngine

from toolkit.errors import UsageError

#: What the builders return.
Sql = sql.Composable

#: Rendering dialect: named paramstyle so that literals do not get ``%`` doubled.
DIALECT = _psycopg.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
_PREPARER = DIALECT.identifier_preparer
_STRING_LITERAL = String().literal_processor(DIALECT)  # type: ignore[no-untyped-call]
#: PostgreSQL truncates longer names silently, which would break lookups by name.
MAX_IDENTIFIER_BYTES = 63
# A type expression as written in DDL or printed by ``format_type``: a name, optionally
# schema-qualified, each part a plain word (any letter, as PostgreSQL allows) or a quoted
# identifier ("my-type", "stimmung_ü": doubled quotes inside); more plain words
# (``double precision``, ``with time zone``); a modifier (``(12)``, ``(10, 2)``); array
# brackets. Quotes must pair: nothing after the type can be swallowed into a name, and no
# statement separator, string quote or comment can get through.
_PLAIN = r"[^\W\d][\w$]*"
_NAME = rf'(?:{_PLAIN}|"(?:[^"\x00]|"")+")'
_TYPE_RE = re.compile(
    rf"^{_NAME}(?:\s*\.\s*{_NAME}){{0,2}}(?:\s+{_PLAIN})*"
    r"(?:\s*\(\s*-?\d+\s*(?:,\s*-?\d+\s*)*\))?"
    rf"(?:\s+{_PLAIN})*(?:\s*\[\s*\d*\s*\])*$"
)
_JSON_TYPES = ("json", "jsonb")


def ident(name: str) -> sql.SQL:
    """``name`` as an identifier, quoted where PostgreSQL needs it."""
    if not name:
        raise UsageError("empty identifier")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes: {name!r}")
    return sql.SQL(_PREPARER.quote(name))


def qualified(name: str, schema: str | None = None) -> Sql:
    """A table (or type) name, schema-qualified when ``schema`` is given."""
    if schema:
        return sql.SQL("{}.{}").format(ident(schema), ident(name))
    return ident(name)


_PART = r'"((?:[^"]|"")+)"|([^".]+)'
_QUALIFIED_RE = re.compile(rf"^(?:{_PART})(?:\.(?:{_PART}))?$")


def split_name(name: str, schema: str | None = None) -> tuple[str | None, str]:
    """``(schema, table)`` of a table name as a user writes it: ``goals`` is in ``schema``,
    ``ref.goals`` in schema ``ref``; double quotes keep a dot in a name
    (``'"ref.goals"'``, ``'"my schema".goals'``; ``""`` inside is one quote). Parts
    without quotes are taken as written (not folded to lower case)."""
    found = _QUALIFIED_RE.match(name)
    if found is None:
        raise UsageError(
            f"not a table name: {name!r} (write schema.table, quoting a part with a dot)"
        )
    quoted1, plain1, quoted2, plain2 = found.groups()
    first = (quoted1 or "").replace('""', '"') or plain1
    if quoted2 is None and plain2 is None:
        return schema, first
    return first, (quoted2 or "").replace('""', '"') or plain2


def idents(names: Iterable[str]) -> Sql:
    """A comma-separated list of identifiers."""
    return sql.SQL(", ").join(ident(n) for n in names)


def column_of(alias: str, name: str) -> Sql:
    """``alias.name`` (aliases are fixed by the builders)."""
    return sql.SQL("{}.{}").format(ident(alias), ident(name))


def literal(value: str) -> sql.SQL:
    """``value`` as a SQL string literal."""
    assert _STRING_LITERAL is not None
    return sql.SQL(str(_STRING_LITERAL(value)))


def type_sql(type_: str | TypeEngine[object]) -> str:
    """A column type as DDL text: a SQLAlchemy type compiled for PostgreSQL, or a checked string."""
    if isinstance(type_, TypeEngine):
        return str(type_.compile(dialect=DIALECT))
    # Runs of white space become one space, except inside quoted names.
    parts = re.split(r'("(?:[^"]|"")*")', str(type_).strip())
    text = "".join(p if i % 2 else re.sub(r"\s+", " ", p) for i, p in enumerate(parts))
    if not _TYPE_RE.match(text):
        raise UsageError(f"not a column type expression: {type_!r}")
    return text


_COLLATION_RE = re.compile(rf"^{_NAME}(?:\.{_NAME})?$")


def collation_clause(collation: str) -> sql.SQL:
    """A collation name as the catalog records it (``pg_catalog."C"``), checked."""
    if not _COLLATION_RE.match(collation):
        raise UsageError(f"not a collation name: {collation!r}")
    return sql.SQL(collation)


def type_clause(type_text: str) -> sql.SQL:
    """A type expression (already checked by ``type_sql`` or read from the catalog)."""
    return sql.SQL(type_sql(type_text))


def is_json_type(type_text: str) -> bool:
    """Whether a type expression names ``json`` or ``jsonb`` (values stored as JSON as is)."""
    return type_text.strip().strip('"').lower() in _JSON_TYPES


def render(statement: Sql) -> str:
    """The SQL text of a composed statement (no connection needed: every part is SQL)."""
    return statement.as_string(None)


def table_as_t(table: str, schema: str | None = None) -> Sql:
    """``table AS t``: the source the checks and counts alias their rows as ``t``."""
    return sql.SQL("{} AS t").format(qualified(table, schema))
