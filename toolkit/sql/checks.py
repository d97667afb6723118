"""Data checks that run before anything changes, online as queries, offline as guards.

A ``RowCheck`` is a condition over the rows of one source (a ``FROM`` item whose rows are
aliased ``t``) that selects the rows an operation would lose or corrupt. Online, one query
counts every check of a source in a single scan, and a second fetches a few sample keys
for a check that failed. Offline, the same conditions become a ``DO`` block that raises
inside the database when the script runs, with the same message the online error has
(both built by ``toolkit.errors.refusal_parts``). The sentences and remedies come from
one catalog, ``toolkit.ops.refusals``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from toolkit.errors import DataRefusedError, Remedy, UsageError, refusal_parts
from toolkit.sql.idents import Sql, column_of, ident, literal, qualified, render

#: How many sample keys a refusal names.
SAMPLE_LIMIT = 5
_DOLLAR_TAG = "$lossless$"


@dataclass(frozen=True)
class RowCheck:
    """Rows matching ``condition`` would be lost or corrupted: refusal ``code``.

    ``reason`` completes "N row(s) ..." in the message; ``table`` and ``column`` are what
    the message names; ``remedy`` says how to proceed (a policy argument, a fix).
    """

    table: str
    column: str | None
    code: str
    reason: str
    condition: Sql
    remedy: Remedy | None = None

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    def parts(self) -> tuple[str, str, str]:
        """The message around count and samples (see ``toolkit.errors.refusal_parts``)."""
        return refusal_parts(self.where, self.reason, self.remedy.text if self.remedy else None)


@dataclass(frozen=True)
class CheckSet:
    """Checks over one source, whose rows are identified by ``key_sql`` (a text expression)."""

    source: Sql
    key_sql: Sql
    checks: tuple[RowCheck, ...]


def refused(check: RowCheck, count: int, samples: Sequence[object]) -> DataRefusedError:
    """The error for ``count`` rows failing ``check``."""
    return DataRefusedError(
        check.reason,
        table=check.table,
        column=check.column,
        count=count,
        samples=samples,
        code=check.code,
        remedy=check.remedy,
    )


def count_query(checks: CheckSet) -> Sql:
    """One row: the number of violating rows of each check, in order, in one scan."""
    counts = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {})").format(c.condition) for c in checks.checks
    )
    anywhere = sql.SQL(" OR ").join(sql.SQL("({})").format(c.condition) for c in checks.checks)
    return sql.SQL("SELECT {} FROM {} WHERE {}").format(counts, checks.source, anywhere)


def samples_query(checks: CheckSet, check: RowCheck) -> Sql:
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
            head=literal(head),
            reason=literal(middle),
            tail=literal(tail),
        )
        for check in checks.checks
        for head, middle, tail in [check.parts()]
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


def missing_primary_key_referent(value: Sql, table: str, schema: str | None = None) -> Sql:
    """Condition: ``value`` is not NULL and ``table`` has no row with it as its (single
    column) primary key, looked up when the statement runs: for a referent named without
    its key (offline, ``REFERENCES table``). The key's name comes from the catalog; each
    referent row's key is compared through ``to_jsonb`` (hashed once, not per value)."""
    rel = sql.SQL("to_regclass({})").format(literal(render(qualified(table, schema))))
    return sql.SQL(
        "{v} IS NOT NULL AND NOT EXISTS (SELECT FROM {t} AS x WHERE to_jsonb(x) -> ("
        "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = {rel} AND i.indisprimary) = to_jsonb({v}))"
    ).format(v=value, t=qualified(table, schema), rel=rel)
