"""Parent and child tables linked by ``child.child_fk -> parent.parent_key``: moving a
column's values down to the children and back up (first child per parent)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.idents import Sql, column_of, ident, qualified
from toolkit.sql.ordering import first_per_group


@dataclass(frozen=True)
class Family:
    """``child.child_fk`` references ``parent.parent_key``."""

    parent: str
    parent_key: str
    child: str
    child_fk: str
    schema: str | None = None

    @property
    def parent_ref(self) -> Sql:
        return qualified(self.parent, self.schema)

    @property
    def child_ref(self) -> Sql:
        return qualified(self.child, self.schema)

    def has_children(self, alias: str) -> Sql:
        """Condition on parent rows ``alias``: at least one child row."""
        return sql.SQL("EXISTS (SELECT FROM {} AS c WHERE c.{} = {})").format(
            self.child_ref, ident(self.child_fk), column_of(alias, self.parent_key)
        )

    def childless(self, alias: str) -> Sql:
        """Condition on parent rows ``alias``: no child row."""
        return sql.SQL("NOT {}").format(self.has_children(alias))

    def without_parent(self, alias: str) -> Sql:
        """Condition on child rows ``alias``: no parent row (``child_fk`` NULL or dangling)."""
        return sql.SQL("NOT EXISTS (SELECT FROM {} AS p WHERE p.{} = {})").format(
            self.parent_ref, ident(self.parent_key), column_of(alias, self.child_fk)
        )

    def copy_down(self, parent_column: str, child_column: str) -> Sql:
        """Give each child row its parent's value (parents holding NULL are skipped)."""
        return sql.SQL(
            "UPDATE {child} AS c SET {ccol} = p.{pcol} FROM {parent} AS p"
            " WHERE c.{fk} = p.{key} AND p.{pcol} IS NOT NULL"
        ).format(
            child=self.child_ref,
            ccol=ident(child_column),
            pcol=ident(parent_column),
            parent=self.parent_ref,
            fk=ident(self.child_fk),
            key=ident(self.parent_key),
        )

    def copy_up_first(
        self, child_column: str, parent_column: str, order_by: tuple[str, ...]
    ) -> Sql:
        """Give each parent the value of its first child in ``order_by`` order."""
        firsts = self.first_children(child_column, order_by)
        return sql.SQL("UPDATE {} AS t SET {} = f.v FROM ({}) AS f WHERE t.{} = f.g").format(
            self.parent_ref, ident(parent_column), firsts, ident(self.parent_key)
        )

    def first_children(self, child_column: str, order_by: tuple[str, ...]) -> Sql:
        """``(g, v)``: each parent's first child's ``child_column`` in ``order_by`` order
        (the value breaks remaining ties)."""
        return first_per_group(self.child_ref, self.child_fk, child_column, order_by)

    def disagreeing_children(self, child_column: str, parent_column: str) -> Sql:
        """How many children hold another value than their parent now does."""
        return sql.SQL(
            "SELECT count(*) FROM {child} AS c JOIN {parent} AS p ON p.{key} = c.{fk}"
            " WHERE c.{ccol} IS DISTINCT FROM p.{pcol}"
        ).format(
            child=self.child_ref,
            parent=self.parent_ref,
            key=ident(self.parent_key),
            fk=ident(self.child_fk),
            ccol=ident(child_column),
            pcol=ident(parent_column),
        )
