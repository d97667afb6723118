"""Running composed SQL on a SQLAlchemy connection: the one way every layer executes it.

Statements are ``psycopg.sql`` compositions whose every part is already SQL (names quoted
by ``toolkit.sql.idents``, values rendered as literals), so they carry no parameters.
SQLAlchemy still hands the driver a parameter list, so psycopg would read ``%`` as the
start of a placeholder: every ``%`` is doubled. Running on the caller's connection keeps
the statement inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult

from toolkit.sql.idents import Sql, render


def execute(conn: Connection, statement: Sql) -> CursorResult[*tuple[Any, ...]]:
    """Execute ``statement`` on ``conn`` exactly as rendered."""
    return conn.exec_driver_sql(render(statement).replace("%", "%%"))
