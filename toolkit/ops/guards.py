"""Refusals about the schema, made before anything changes: objects that use a column an
operation drops and that it cannot carry, and row-level security that would hide rows
from the operation's own statements.

Online they run in ``resolve`` and raise ``UsageError`` naming every object; offline the
same queries run in a ``DO`` block at the top of the script, raising with the same text.
"""

from __future__ import annotations

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import Run, Step
from toolkit.sql.checks import do_block
from toolkit.sql.dependents import (
    blocking_dependents,
    describe,
    inheritance_blocks,
    payload_columns,
    row_security_hides,
)
from toolkit.sql.idents import Sql, literal

_NOTHING = sql.SQL("")
_DEPENDENTS_REMEDY = (
    "drop them before the operation and re-create them after it (in the same revision),"
    " or change them so that they no longer use the column"
)
_INHERITANCE_REMEDY = (
    "detach the children (ALTER TABLE child NO INHERIT parent), run the operation on each"
    " table on its own (each needs its own primary key), then attach them again"
    " (ALTER TABLE child INHERIT parent)"
)
_RLS_REMEDY = (
    "run the migration as the table owner without FORCE ROW LEVEL SECURITY, as a role with"
    " BYPASSRLS, or as a superuser"
)


def _message(operation: str, subject: str, remedy: str) -> str:
    return f"refused: {operation}: {subject}; {remedy}"


def refuse_dependents(runner: Runner, table: str, column: str, schema: str | None) -> list[Step]:
    """Online: raise if anything blocks dropping ``table.column``; offline: the guard."""
    query = blocking_dependents(table, column, schema)
    head = f"{table}.{column} is used by "
    tail = ", which the operation cannot carry"
    return _refuse_found(runner, query, head, tail, _DEPENDENTS_REMEDY)


def refuse_inheritance(
    runner: Runner, table: str, schema: str | None, dropped: str | None = None
) -> list[Step]:
    """Online: raise if ``table`` has inheritance children, or ``dropped`` (a column the
    operation drops) is inherited; offline: the guard. Partitions are not refused: a
    partitioned table's key is unique across them and holds no rows of its own."""
    query = inheritance_blocks(table, schema, dropped)
    head = f"{table} is in a table-inheritance hierarchy ("
    tail = (
        "): its statements would reach the children's rows too, which the parent's primary"
        " key does not tell apart from its own"
    )
    return _refuse_found(runner, query, head, tail, _INHERITANCE_REMEDY)


def _refuse_found(runner: Runner, query: Sql, head: str, tail: str, remedy: str) -> list[Step]:
    """Raise (online) or guard (offline) the refusal naming every ``(kind, what)`` row of
    ``query``."""
    if runner.offline:
        found = sql.SQL("string_agg(q.kind || ' ' || q.what, ', ')")
        return [Run(_guard(query, found, runner.operation, head, tail, remedy))]
    rows = runner.rows(query)
    if rows:
        names = describe([(str(k), str(w)) for k, w in rows])
        raise UsageError(_message(runner.operation, head + names + tail, remedy))
    return []


def refuse_hidden_rows(runner: Runner, tables: list[tuple[str | None, str]]) -> list[Step]:
    """Online: raise if row-level security hides rows of one of ``tables`` from the
    current role; offline: the guards."""
    steps: list[Step] = []
    for schema, table in tables:
        query = row_security_hides(table, schema)
        head = f"row-level security on {table} applies to role "
        tail = ": the operation would see only some rows"
        if runner.offline:
            found = sql.SQL("max(q.role) || ' (policies: ' || max(q.policies) || ')'")
            steps.append(Run(_guard(query, found, runner.operation, head, tail, _RLS_REMEDY)))
            continue
        for role, policies in runner.rows(query):
            subject = f"{head}{role} (policies: {policies}){tail}"
            raise UsageError(_message(runner.operation, subject, _RLS_REMEDY))
    return steps


def refuse_payload(
    runner: Runner,
    junction: str,
    known: list[str],
    declared: tuple[str, ...],
    schema: str | None,
    *,
    unless: Sql = _NOTHING,
) -> list[Step]:
    """Online: raise if ``junction`` has columns a collapse would drop (other than
    ``known`` and the ``declared`` loss); offline: the guard, which ``unless`` (PL/pgSQL
    statements run first) can leave with ``RETURN``."""
    query = payload_columns(junction, [*known, *declared], schema)
    head = f"{junction} has payload column(s) "
    tail = " that the collapse would drop with it"
    remedy = (
        "copy them elsewhere first, collapse with keep_extra_links=True (the junction is"
        " then recorded whole, payload included, for the promote back), or declare their"
        " loss with drop_payload=(...) naming each of them"
    )
    if runner.offline:
        found = sql.SQL("string_agg(q.what, ', ')")
        return [Run(_guard(query, found, runner.operation, head, tail, remedy, unless))]
    names = ", ".join(str(row[0]) for row in runner.rows(query))
    if names:
        raise UsageError(_message(runner.operation, head + names + tail, remedy))
    return []


def _guard(
    query: Sql,
    found: Sql,
    operation: str,
    head: str,
    tail: str,
    remedy: str,
    unless: Sql = _NOTHING,
) -> Sql:
    """A ``DO`` block raising the refusal if ``query`` finds anything when the script runs
    (``unless``: statements run first, which may ``RETURN``)."""
    before, after = _message(operation, head + "\x00", remedy).split("\x00")
    return do_block(
        sql.SQL(
            "DECLARE\n  found text;\nBEGIN\n{unless}"
            "  SELECT {found} INTO found FROM ({query}) AS q;\n"
            "  IF found IS NOT NULL THEN\n    RAISE EXCEPTION USING ERRCODE = 'check_violation',"
            " MESSAGE = {before} || found || {after};\n  END IF;\nEND"
        ).format(
            unless=unless,
            found=found,
            query=query,
            before=literal(before),
            after=literal(tail + after),
        )
    )
