"""The order online mode's short transactions take their table locks in: the application's.

An application writes a parent row before its children (a foreign key makes it), so its
transactions lock the referenced table before the referencing one. A short transaction of
online mode that took the child first (the global name order of ``merged_locks``) and then
waited for the parent would hold the child while an application transaction that wrote the
parent waits for it: a lock cycle, broken only by ``lock_timeout``, then a retry, again and
again under a steady load. Taking referenced tables first, the transaction waits for such an
application transaction without holding anything it needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from psycopg import sql

from toolkit.ops.runtime import Runner
from toolkit.ops.steps import TableLock
from toolkit.sql.idents import Sql
from toolkit.sql.lookups import regclass


def referenced_first(runner: Runner, locks: Sequence[TableLock]) -> list[TableLock]:
    """``locks`` (one per table, as ``merged_locks`` gives them) with each table after the
    tables of ``locks`` it references by a foreign key; otherwise in the order given
    (``referenced_order``)."""
    if len(locks) < 2:
        return list(locks)
    edges = [(int(a), int(b)) for a, b in runner.rows(foreign_keys_among(locks))]
    return [locks[i] for i in referenced_order(len(locks), edges)]


def referenced_order(count: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Positions ``0 .. count - 1``, each after those it references (``edges``:
    ``(referencing, referenced)``); the lowest position first among the ready ones; in a
    cycle, the lowest position of a table another one references."""
    references: dict[int, set[int]] = {i: set() for i in range(count)}
    for child, parent in edges:
        references[child].add(parent)
    ordered: list[int] = []
    left = list(range(count))
    while left:
        waiting = set(left)
        ready = [i for i in left if not references[i] & waiting]
        if not ready:  # a cycle: broken at its first table another one references
            ready = [i for i in left if any(i in references[j] for j in left)] or left
        pick = ready[0]
        ordered.append(pick)
        left.remove(pick)
    return ordered


def foreign_keys_among(locks: Sequence[TableLock]) -> Sql:
    """Rows ``(referencing, referenced)``: positions in ``locks`` of two different tables
    joined by a foreign key."""
    tables = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(i), regclass(lock.table, lock.schema))
        for i, lock in enumerate(locks)
    )
    return sql.SQL(
        "WITH t(i, oid) AS (VALUES {}) SELECT DISTINCT a.i, b.i FROM pg_constraint AS c"
        " JOIN t AS a ON a.oid = c.conrelid JOIN t AS b ON b.oid = c.confrelid"
        " WHERE c.contype = 'f' AND a.i <> b.i"
    ).format(tables)
