"""Deterministic "first row per group": explicit orders, never whatever a join picks.

Shared by the junction (first link per owner) and the family (first child per parent).
"""

from __future__ import annotations

from psycopg import sql

from toolkit.sql.idents import Sql, column_of


def order_sql(alias: str, order_by: tuple[str, ...], tie_breaker: str | None = None) -> Sql:
    """An ORDER BY list; ``-name`` sorts descending; ``tie_breaker`` makes it total."""
    terms = []
    for name in order_by:
        desc = name.startswith("-")
        col = column_of(alias, name[1:] if desc else name)
        terms.append(sql.SQL("{} DESC").format(col) if desc else col)
    if tie_breaker and tie_breaker not in order_by:
        terms.append(column_of(alias, tie_breaker))
    return sql.SQL(", ").join(terms)


def first_per_group(
    source: Sql,
    group_column: str,
    value_column: str,
    order_by: tuple[str, ...],
    groups: Sql | None = None,
) -> Sql:
    """``(g, v)``: per group, the value of the first row in ``order_by`` order.

    ``DISTINCT ON`` with an explicit order (the value itself breaks remaining ties), never
    whatever row an ``UPDATE ... FROM`` join would happen to pick. ``groups``, a query of
    one column, limits it to the groups it returns (an online batch's owners), through
    ``= ANY(ARRAY(groups))``: evaluated once, its keys then looked up in an index on
    ``group_column``, whatever the planner guesses of their number (with ``IN (groups)``, a
    guess of one key made it re-scan the result once per key, and a guess of many made it
    read the whole table: both slower with every batch as the table grows).
    """
    g = column_of("x", group_column)
    only: Sql = sql.SQL("")
    if groups is not None:
        only = sql.SQL(" WHERE {} = ANY(ARRAY({}))").format(g, groups)
    return sql.SQL(
        "SELECT DISTINCT ON ({g}) {g} AS g, {v} AS v FROM {source} AS x{only} ORDER BY {g}, {order}"
    ).format(
        g=g,
        v=column_of("x", value_column),
        source=source,
        only=only,
        order=order_sql("x", order_by, value_column),
    )
