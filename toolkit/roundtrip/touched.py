"""Which tables a migration step alters, drops, updates or deletes from.

Every statement sent through SQLAlchemy while a step runs is recorded (the
``before_cursor_execute`` event on every engine: Alembic's operations, ``op.execute``, the
toolkit's operations) and read for the tables it changes. A step whose changed tables had
no row when it started proved nothing about data: the round trip calls it untested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_LIST = rf"{_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*"
_PATTERNS = [
    re.compile(rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<names>{_QUALIFIED})", re.I),
    re.compile(rf"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<names>{_LIST})", re.I),
    re.compile(rf"\bUPDATE\s+(?:ONLY\s+)?(?P<names>{_QUALIFIED})\s+(?:AS\s+\w+\s+)?SET\b", re.I),
    re.compile(rf"\bDELETE\s+FROM\s+(?:ONLY\s+)?(?P<names>{_QUALIFIED})", re.I),
    re.compile(rf"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?(?P<names>{_LIST})", re.I),
    re.compile(
        rf"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b[^;]*?\bON\s+(?:ONLY\s+)?(?P<names>{_QUALIFIED})",
        re.I,
    ),
]
_PART = re.compile(_NAME)


def changed_tables(statements: Iterable[str], schema: str = "public") -> set[str]:
    """Names of the tables of ``schema`` the statements alter, drop, update or delete from."""
    found: set[str] = set()
    for statement in statements:
        for pattern in _PATTERNS:
            for match in pattern.finditer(statement):
                for name in _split_list(match["names"]):
                    parts = [_unquote(p) for p in _PART.findall(name)]
                    if len(parts) == 1:
                        found.add(parts[0])
                    elif parts[0] == schema:
                        found.add(parts[1])
    return found


def _split_list(names: str) -> list[str]:
    return [n for n in re.split(rf"\s*,\s*(?={_NAME})", names) if n]


def _unquote(part: str) -> str:
    if part.startswith('"'):
        return part[1:-1].replace('""', '"')
    return part.lower()


@contextmanager
def recording_statements() -> Iterator[list[str]]:
    """Collect the text of every statement any SQLAlchemy engine executes meanwhile."""
    statements: list[str] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        del conn, cursor, parameters, context, many
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)
