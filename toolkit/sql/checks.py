"""Data checks that run before anything changes, online as queries, offline as guards.

A ``Check`` is a condition over the rows of one source (a ``FROM`` item whose rows are
aliased ``t``) that selects the rows an operation would lose or corrupt. Online, one query
counts every check of a source in a single scan, and a second fetches a few sample keys
for a check that failed. Offline, the same conditions become a ``DO`` block that raises
inside the database when the script runs, with the same message the online error has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.sql.idents import Sql, column_of, ident, literal, qualified, render

#: How many sample keys a refusal names.
SAMPLE_LIMIT = 5
_DOLLAR_TAG = "$lossless$"


@dataclass(frozen=True)
class Check:
    """Rows matching ``condition`` would be lost or corrupted.

    ``reason`` completes "N row(s) ..." in the message; ``table`` and ``column`` are what
    the message names; ``hint`` says how to proceed (a policy argument, a fix).
    """

    table: str
    column: str | None
    reason: str
    condition: Sql
    hint: str | None = None

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    @property
    def tail(self) -> str:
        return f"; {self.hint}" if self.hint else ""


@dataclass(frozen=True)
class CheckSet:
    """Checks over one source, whose rows are identified by ``key_sql`` (a text expression)."""

    source: Sql
    key_sql: Sql
    checks: tuple[Check, ...]


def count_query(checks: CheckSet) -> Sql:
    """One row: the number of violating rows of each check, in order, in one scan."""
    counts = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {})").format(c.condition) for c in checks.checks
    )
    anywhere = sql.SQL(" OR ").join(sql.SQL("({})").format(c.condition) for c in checks.checks)
    return sql.SQL("SELECT {} FROM {} WHERE {}").format(counts, checks.source, anywhere)


def samples_query(checks: CheckSet, check: Check) -> Sql:
    """The first few keys (sorted) of rows violating ``check``."""
    return sql.SQL("SELECT {} AS k FROM {} WHERE {} ORDER BY 1 LIMIT {}").format(
        checks.key_sql, checks.source, check.condition, sql.SQL(str(SAMPLE_LIMIT))
    )


def guard_block(checks: CheckSet) -> Sql:
    """A ``DO`` block raising ``check_violation`` with the refusal message if any check fails.

    No ``%`` anywhere (messages are concatenated), so the text survives any paramstyle.
    """
    template = sql.SQL(
        "  SELECT count(*) INTO n FROM {source} WHERE {condition};\n"
        "  IF n > 0 THEN\n"
        "    SELECT string_agg(s.k, ', ') INTO samples FROM ({samples}) AS s;\n"
        "    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE ="
        " {head} || n || {reason} || ' (e.g. ' || samples || ')' || {tail};\n"
        "  END IF;\n"
    )
    parts = [
        template.format(
            source=checks.source,
            condition=check.condition,
            samples=samples_query(checks, check),
            head=literal(f"refused: {check.where}: "),
            reason=literal(f" row(s) {check.reason}"),
            tail=literal(check.tail),
        )
        for check in checks.checks
    ]
    return do_block(
        sql.SQL("DECLARE\n  n bigint;\n  samples text;\nBEGIN\n{}END").format(sql.Composed(parts))
    )


def do_block(body: Sql) -> Sql:
    """``DO $lossless$ body $lossless$`` (a PL/pgSQL block with no parameters)."""
    if _DOLLAR_TAG in render(body):
        raise UsageError(f"SQL text contains the reserved quote tag {_DOLLAR_TAG}")
    return sql.SQL("DO {tag}\n{body}\n{tag}").format(tag=sql.SQL(_DOLLAR_TAG), body=body)


def key_text(alias: str, columns: Sequence[str]) -> Sql:
    """A text expression identifying a row by its key columns (for sample keys)."""
    if len(columns) == 1:
        return sql.SQL("{}::text").format(column_of(alias, columns[0]))
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(column_of(alias, c) for c in columns))


def missing_referent(value: Sql, table: str, key: str, schema: str | None = None) -> Sql:
    """Condition: ``value`` is not NULL and ``table.key`` has no such row."""
    return sql.SQL(
        "{v} IS NOT NULL AND NOT EXISTS (SELECT FROM {t} AS x WHERE x.{k} = {v})"
    ).format(v=value, t=qualified(table, schema), k=ident(key))
