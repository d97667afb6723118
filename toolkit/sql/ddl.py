"""DDL statements shared by the operations (columns, constraints, indexes, locks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.sql.checks import do_block
from toolkit.sql.idents import (
    Sql,
    collation_clause,
    ident,
    idents,
    literal,
    qualified,
    split_name,
    type_clause,
)

#: ``pg_constraint.confdeltype`` / ``confupdtype`` codes and their SQL.
FK_ACTIONS = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_ACTION_WORDS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")


@dataclass(frozen=True)
class ForeignKeySpec:
    """A foreign key to create: referenced table, columns (empty: its primary key), actions."""

    referent_table: str
    referent_columns: tuple[str, ...] = ()
    referent_schema: str | None = None
    ondelete: str | None = None
    onupdate: str | None = None
    deferrable: bool = False
    initially_deferred: bool = False
    match: str | None = None  # "FULL" or "SIMPLE" (the default)

    @classmethod
    def to(
        cls,
        referent: str,
        columns: tuple[str, ...],
        schema: str | None,
        *,
        ondelete: str | None = None,
    ) -> ForeignKeySpec:
        """A foreign key to ``referent`` as an argument names it: in ``schema`` unless
        qualified (``ref.goals``; see ``toolkit.sql.idents.split_name``)."""
        referent_schema, table = split_name(referent, schema)
        return cls(table, columns, referent_schema, ondelete=ondelete)

    def clause(self, columns: Sequence[str]) -> Sql:
        """``FOREIGN KEY (...) REFERENCES ...`` for the local ``columns``."""
        target = qualified(self.referent_table, self.referent_schema)
        if self.referent_columns:
            target = sql.SQL("{}({})").format(target, idents(self.referent_columns))
        parts: list[Sql] = [
            sql.SQL("FOREIGN KEY ({}) REFERENCES {}").format(idents(columns), target)
        ]
        if self.match and self.match.upper() != "SIMPLE":
            parts.append(sql.SQL(" MATCH FULL"))
        if self.ondelete:
            parts.append(sql.SQL(" ON DELETE {}").format(fk_action(self.ondelete)))
        if self.onupdate:
            parts.append(sql.SQL(" ON UPDATE {}").format(fk_action(self.onupdate)))
        if self.deferrable:
            parts.append(sql.SQL(" DEFERRABLE"))
            if self.initially_deferred:
                parts.append(sql.SQL(" INITIALLY DEFERRED"))
        return sql.Composed(parts)


def fk_action(action: str) -> sql.SQL:
    """A referential action, checked against the ones PostgreSQL knows."""
    word = " ".join(action.upper().split())
    for known in _ACTION_WORDS:
        if word == known:
            return sql.SQL(known)
    raise UsageError(f"unknown foreign key action {action!r}")


def _alter(table: str, schema: str | None) -> Sql:
    return sql.SQL("ALTER TABLE {}").format(qualified(table, schema))


def lock_tables(tables: Sequence[tuple[str | None, str]], mode: str) -> Sql:
    """``LOCK TABLE`` the ``(schema, table)`` pairs, in the order given, in ``mode``
    (one of ``toolkit.ops.steps.LOCK_MODES``, checked by the caller)."""
    names = sql.SQL(", ").join(qualified(t, s) for s, t in tables)
    return sql.SQL("LOCK TABLE {} IN {} MODE").format(names, sql.SQL(mode))


def add_column(
    table: str,
    column: str,
    type_text: str,
    *,
    schema: str | None = None,
    collation: str | None = None,
) -> Sql:
    """Add a nullable column without default (instant, no table rewrite)."""
    statement = sql.SQL("{} ADD COLUMN {} {}").format(
        _alter(table, schema), ident(column), type_clause(type_text)
    )
    if collation is None:
        return statement
    return sql.SQL("{} COLLATE {}").format(statement, collation_clause(collation))


def drop_column(table: str, column: str, *, schema: str | None = None) -> Sql:
    """Drop a column (indexes and constraints on it go with it)."""
    return sql.SQL("{} DROP COLUMN {}").format(_alter(table, schema), ident(column))


def drop_column_if_exists(table: str, column: str, *, schema: str | None = None) -> Sql:
    """Drop a column when it is there (an aborted online run's new column)."""
    return sql.SQL("{} DROP COLUMN IF EXISTS {}").format(_alter(table, schema), ident(column))


def drop_constraint(table: str, name: str, *, schema: str | None = None) -> Sql:
    """Drop a constraint by its real name."""
    return sql.SQL("{} DROP CONSTRAINT {}").format(_alter(table, schema), ident(name))


def set_not_null(table: str, column: str, *, schema: str | None = None) -> Sql:
    """Mark a column NOT NULL (one validating scan)."""
    return sql.SQL("{} ALTER COLUMN {} SET NOT NULL").format(_alter(table, schema), ident(column))


def set_default(table: str, column: str, expression: str, *, schema: str | None = None) -> Sql:
    """Give a column a default; ``expression`` is ``pg_get_expr`` text from the catalog."""
    return sql.SQL("{} ALTER COLUMN {} SET DEFAULT {}").format(
        _alter(table, schema), ident(column), sql.SQL(expression)
    )


def add_foreign_key(
    table: str, columns: Sequence[str], name: str, spec: ForeignKeySpec, *, schema: str | None
) -> Sql:
    """Add a named foreign key (validated in one set-based pass)."""
    return sql.SQL("{} ADD CONSTRAINT {} {}").format(
        _alter(table, schema), ident(name), spec.clause(columns)
    )


def add_constraint_definition(
    table: str, name: str, definition: str, *, schema: str | None = None
) -> Sql:
    """Re-add a constraint from its ``pg_get_constraintdef`` text (quoted by PostgreSQL)."""
    return sql.SQL("{} ADD CONSTRAINT {} {}").format(
        _alter(table, schema), ident(name), sql.SQL(definition)
    )


def add_primary_key(table: str, columns: Sequence[str], name: str, *, schema: str | None) -> Sql:
    """Add a named primary key (builds its index in one sort)."""
    return sql.SQL("{} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
        _alter(table, schema), ident(name), idents(columns)
    )


def add_unique(table: str, columns: Sequence[str], name: str, *, schema: str | None) -> Sql:
    """Add a named unique constraint."""
    return sql.SQL("{} ADD CONSTRAINT {} UNIQUE ({})").format(
        _alter(table, schema), ident(name), idents(columns)
    )


def add_primary_key_using_index(table: str, index: str, *, schema: str | None) -> Sql:
    """Make the unique index ``index`` (built concurrently) the table's primary key, named
    after it. Its columns must already be NOT NULL: then nothing is scanned."""
    return sql.SQL("{} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
        _alter(table, schema), ident(index), ident(index)
    )


def create_index(
    table: str,
    columns: Sequence[str],
    name: str,
    *,
    schema: str | None,
    unique: bool = False,
    concurrently: bool = False,
) -> Sql:
    """A b-tree index (``unique``; built ``concurrently``: writes go on meanwhile)."""
    return sql.SQL("CREATE {}INDEX {}{} ON {} ({})").format(
        sql.SQL("UNIQUE " if unique else ""),
        sql.SQL("CONCURRENTLY " if concurrently else ""),
        ident(name),
        qualified(table, schema),
        idents(columns),
    )


def drop_table(table: str, *, schema: str | None = None) -> Sql:
    """Drop a table."""
    return sql.SQL("DROP TABLE {}").format(qualified(table, schema))


def count_rows(table: str, where: Sql | None = None, *, schema: str | None = None) -> Sql:
    """``SELECT count(*)`` of a table, optionally filtered (rows aliased ``t``)."""
    query = sql.SQL("SELECT count(*) FROM {} AS t").format(qualified(table, schema))
    if where is None:
        return query
    return sql.SQL("{} WHERE {}").format(query, where)


def fill_nulls(
    table: str, column: str, value: str, type_text: str, *, schema: str | None = None
) -> Sql:
    """Give every row whose ``column`` is NULL the value ``value`` (cast to the type)."""
    return sql.SQL("UPDATE {} SET {c} = {}::{} WHERE {c} IS NULL").format(
        qualified(table, schema), literal(value), type_clause(type_text), c=ident(column)
    )


def set_not_null_if_complete(table: str, column: str, *, schema: str | None = None) -> Sql:
    """NOT NULL only if no row is NULL, else a notice (offline ``keep_null`` policy)."""
    return do_block(
        sql.SQL(
            "BEGIN\n  IF NOT EXISTS (SELECT FROM {t} WHERE {c} IS NULL) THEN\n    {set};\n"
            "  ELSE\n    RAISE NOTICE USING MESSAGE = {message};\n  END IF;\nEND"
        ).format(
            t=qualified(table, schema),
            c=ident(column),
            set=set_not_null(table, column, schema=schema),
            message=literal(f"lossless: {table}.{column} left nullable: rows have no value"),
        )
    )
