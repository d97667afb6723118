"""Online mode of ``collapse_junction_to_fk``: the mirror trigger, batches and measures that
keep each owner's new column equal to its first link while the application writes links.

While the backfill runs, the application may add, remove or change links (and insert or
delete owners). One row trigger on the junction, AFTER INSERT, UPDATE (of the link
columns and the order's columns) or DELETE, recomputes the column of every owner the row
names (before and after): it first locks those owner rows ``FOR NO KEY UPDATE`` in key
order, then, in a statement of its own (so under a snapshot taken once the lock is had),
sets the column to the owner's first link in the collapse's order, or NULL when none is
left. A batch locks its owners the same way, so a batch and a trigger touching the same
owner take turns and the later one sees what the earlier committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.idents import Sql, column_of, ident
from toolkit.sql.junction import JunctionShape
from toolkit.sql.ordering import order_sql


@dataclass(frozen=True)
class FirstLinks:
    """``shape``'s owners' column, set to their first link in ``order_by`` order (the
    referent breaks remaining ties, as ``toolkit.sql.ordering.first_per_group``)."""

    shape: JunctionShape
    order_by: tuple[str, ...]

    def first_of(self, owner: Sql) -> Sql:
        """A scalar subquery: the first link of the owner whose key is ``owner``."""
        shape = self.shape
        return sql.SQL(
            "(SELECT j.{referent} FROM {ref} AS j WHERE j.{owner_column} = {owner}"
            " ORDER BY {order} LIMIT 1)"
        ).format(
            referent=ident(shape.referent_column),
            ref=shape.ref,
            owner_column=ident(shape.owner_column),
            owner=owner,
            order=order_sql("j", self.order_by, shape.referent_column),
        )

    def _has_links(self, alias: str) -> Sql:
        shape = self.shape
        return sql.SQL("EXISTS (SELECT FROM {} AS j WHERE j.{} = {})").format(
            shape.ref, ident(shape.owner_column), column_of(alias, shape.owner_key)
        )

    def fill(self, row_filter: Sql) -> Sql:
        """A batch: the owners ``t`` matching ``row_filter`` (locked) that have links get
        their first one (owners without links keep the NULL the column was added with):
        the plain collapse's statement, limited to the batch's owners (their links read in
        one pass through the junction's index on the owner column, one sort)."""
        return self.shape.set_first_links(self.order_by, row_filter)

    def count_collapsed(self) -> Sql:
        """How many owners have a link (the plain collapse's ``collapsed``)."""
        return sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(
            self.shape.owner_ref, self._has_links("t")
        )

    def count_missing(self) -> Sql:
        """How many owners' column is not their first link (must be 0 before the contract):
        the first links of the whole junction, computed once, joined to the owners."""
        shape = self.shape
        return sql.SQL(
            "SELECT count(*) FROM {owner_ref} AS t LEFT JOIN ({firsts}) AS f ON f.g = {key}"
            " WHERE {col} IS DISTINCT FROM f.v"
        ).format(
            owner_ref=shape.owner_ref,
            firsts=shape.first_links(self.order_by),
            key=column_of("t", shape.owner_key),
            col=column_of("t", shape.column),
        )

    def trigger_columns(self) -> tuple[str, ...]:
        """The junction columns whose change can change an owner's first link."""
        shape = self.shape
        names = [shape.owner_column, shape.referent_column]
        names += [name.lstrip("-") for name in self.order_by]
        return tuple(dict.fromkeys(names))

    def mirror_body(self) -> Sql:
        """The AFTER row trigger on the junction (see the module docstring)."""
        owner_column = ident(self.shape.owner_column)
        branches = [
            ("IF TG_OP = 'INSERT' THEN", [sql.SQL("NEW.{}").format(owner_column)]),
            ("ELSIF TG_OP = 'DELETE' THEN", [sql.SQL("OLD.{}").format(owner_column)]),
            (
                "ELSE",
                [sql.SQL("OLD.{}").format(owner_column), sql.SQL("NEW.{}").format(owner_column)],
            ),
        ]
        parts = [
            sql.SQL("{}\n{}").format(sql.SQL(head), self._recompute(owners))
            for head, owners in branches
        ]
        return sql.SQL("{}\nEND IF;\nRETURN NULL;").format(sql.SQL("\n").join(parts))

    def _recompute(self, owners: Sequence[Sql]) -> Sql:
        """Lock the ``owners`` rows in key order, then set their column anew."""
        shape = self.shape
        keys = sql.SQL(", ").join(owners)
        key = column_of("t", shape.owner_key)
        first = self.first_of(key)
        return sql.SQL(
            "  PERFORM FROM {owner_ref} AS t WHERE {key} IN ({keys}) ORDER BY {key}"
            " FOR NO KEY UPDATE;\n"
            "  UPDATE {owner_ref} AS t SET {col} = {first} WHERE {key} IN ({keys})"
            " AND {current} IS DISTINCT FROM {first};"
        ).format(
            owner_ref=shape.owner_ref,
            key=key,
            keys=keys,
            col=ident(shape.column),
            first=first,
            current=column_of("t", shape.column),
        )
