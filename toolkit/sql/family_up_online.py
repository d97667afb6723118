"""Online mode of ``move_fk_to_parent``: the parent's new column follows its first child,
else the value kept in its JSONB, while the application keeps writing.

The batches move each parent's kept value out of its JSONB (the key removed, a JSONB the
stash had marked given back its SQL NULL, as the plain restore does) into a column of the
toolkit's own on the parent, ``lossless_kept_<column>`` (same type; dropped at the
contract: catalog only), so that an abort can put every value back under the key and a
parent that loses its last child later still finds its kept value. The new column is
then ``COALESCE(first child's value, kept value)``, the plain run's result.

Mirror triggers:

- on the child, AFTER INSERT, DELETE or UPDATE of the value, the link or the order's
  columns: the parents on both sides of the change are locked ``FOR NO KEY UPDATE`` (so
  the next statement sees every committed child) and their new column recomputed;
- on the parent, BEFORE INSERT or UPDATE of the JSONB: a key the application writes is
  moved out as a batch would move it.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.family import Family
from toolkit.sql.idents import Sql, column_of, ident, literal, qualified
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.online import online_name
from toolkit.sql.ordering import order_sql
from toolkit.sql.planner import nested_loops_back, nested_loops_off
from toolkit.sql.stash import WAS_NULL, entry, row_key_json, stash_ref


def kept_column(column: str) -> str:
    """The toolkit's column on the parent holding the values moved out of the JSONB."""
    return online_name(f"lossless_kept_{column}", "column")


@dataclass(frozen=True)
class UpMirror:
    """``family``'s children's ``child_column`` moving up to ``slot.column`` (the
    parent's new column) by ``order_by``, else the value kept under ``slot.key``."""

    family: Family
    slot: JsonbSlot
    child_column: str
    order_by: tuple[str, ...]
    type_text: str

    @property
    def kept(self) -> str:
        return kept_column(self.slot.column)

    @property
    def kept_slot(self) -> JsonbSlot:
        """The kept column as a slot of the same JSONB key (an abort writes it back)."""
        slot = self.slot
        return JsonbSlot(
            slot.table, self.kept, slot.jsonb_column, slot.key, slot.key_columns, slot.schema
        )

    def first_child(self, alias: str) -> Sql:
        """The value of the first child of parent row ``alias`` (NULL: none, or NULL)."""
        family = self.family
        return sql.SQL(
            "(SELECT x.{v} FROM {child} AS x WHERE x.{fk} = {key} ORDER BY {order} LIMIT 1)"
        ).format(
            v=ident(self.child_column),
            child=family.child_ref,
            fk=ident(family.child_fk),
            key=column_of(alias, family.parent_key),
            order=order_sql("x", self.order_by, self.child_column),
        )

    def _stash_value(self) -> Sql:
        """Parent rows ``t``: the kept value, else the one still under the key."""
        return sql.SQL("COALESCE(t.{}, {})").format(
            ident(self.kept), self.slot.decoded(self.type_text)
        )

    def recompute(self, where: Sql) -> Sql:
        """The new column of the parents ``t`` matching ``where`` (a trigger's parent, or a
        batch's: one lookup of the index on the link per parent, no join for the planner
        to get wrong)."""
        return sql.SQL("UPDATE {} SET {} = COALESCE({}, {}) WHERE {}").format(
            self.slot.source,
            ident(self.slot.column),
            self.first_child("t"),
            self._stash_value(),
            where,
        )

    def firsts(self) -> Sql:
        """``(g, v)``: each parent's first child's value, as ``first_child`` finds it one
        parent at a time, for all parents at once (the measures)."""
        return self.family.first_children(self.child_column, self.order_by)

    def _with_firsts(self) -> Sql:
        """Parent rows ``t`` and their first child's value ``f.v`` (NULL: none, or NULL)."""
        return sql.SQL("{} LEFT JOIN ({}) AS f ON f.g = {}").format(
            self.slot.source, self.firsts(), column_of("t", self.family.parent_key)
        )

    def batch(self, where: Sql) -> list[Sql]:
        """The parents ``where`` selects: their key moved out (a marked JSONB left
        exactly ``{}`` given back its SQL NULL, joined to the marks without nested loops,
        as the plain restore does), their new column set."""
        slot = self.slot
        holds = sql.SQL("{} AND {}").format(where, slot.holds_key)
        return [
            sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                slot.source, ident(self.kept), slot.decoded(self.type_text), holds
            ),
            nested_loops_off(),
            slot.restore_null_jsonb(self.type_text, keep_existing=True, row_filter=where),
            nested_loops_back(),
            sql.SQL("UPDATE {} SET {} = {} - {} WHERE {}").format(
                slot.source, ident(slot.jsonb_column), slot.jsonb, literal(slot.key), holds
            ),
            self.recompute(where),
        ]

    def _marked(self, alias: str) -> Sql:
        """Parent row ``alias`` has a "was NULL" mark of the JSONB column."""
        slot = self.slot
        return sql.SQL("EXISTS (SELECT FROM {} AS m WHERE {} AND m.row_key = {})").format(
            stash_ref(slot.schema),
            entry(WAS_NULL, slot.table, slot.jsonb_column, "m"),
            row_key_json(alias, slot.key_columns),
        )

    def child_body(self) -> Sql:
        """AFTER INSERT / UPDATE / DELETE on the child: the parents on both sides."""
        family = self.family
        lock = sql.SQL(
            "PERFORM FROM {parent} AS p WHERE p.{key} = {side}.{fk} FOR NO KEY UPDATE;\n"
        )
        parts = []
        for side, op in (("NEW", "DELETE"), ("OLD", "INSERT")):
            where = sql.SQL("t.{} = {}.{}").format(
                ident(family.parent_key), sql.SQL(side), ident(family.child_fk)
            )
            parts.append(
                sql.SQL("IF TG_OP <> {op} THEN\n  {lock}  {update};\nEND IF;\n").format(
                    op=literal(op),
                    lock=lock.format(
                        parent=family.parent_ref,
                        key=ident(family.parent_key),
                        side=sql.SQL(side),
                        fk=ident(family.child_fk),
                    ),
                    update=self.recompute(where),
                )
            )
        return sql.SQL("{}RETURN NULL;").format(sql.SQL("").join(parts))

    def parent_body(self) -> Sql:
        """BEFORE INSERT / UPDATE of the JSONB on the parent: a key written by the
        application is moved out (as a batch moves it)."""
        slot = self.slot
        return sql.SQL(
            "IF jsonb_typeof(NEW.{j}) = 'object' AND NEW.{j} ? {k} THEN\n"
            "  SELECT {value} INTO NEW.{kept} FROM (SELECT NEW.*) AS t;\n"
            "  IF NEW.{j} = jsonb_build_object({k}, NEW.{j} -> {k}) AND {marked} THEN\n"
            "    NEW.{j} := NULL;\n"
            "  ELSE\n"
            "    NEW.{j} := NEW.{j} - {k};\n"
            "  END IF;\n"
            "  NEW.{col} := COALESCE({first}, NEW.{kept});\n"
            "END IF;\nRETURN NEW;"
        ).format(
            j=ident(slot.jsonb_column),
            k=literal(slot.key),
            value=slot.decoded(self.type_text),
            kept=ident(self.kept),
            marked=self._marked("new"),
            col=ident(slot.column),
            first=self.first_child("new"),
        )

    def update_columns(self) -> tuple[str, ...]:
        """The child's columns whose change can change a parent's first child."""
        names = [self.child_column, self.family.child_fk]
        names += [n[1:] if n.startswith("-") else n for n in self.order_by]
        return tuple(dict.fromkeys(names))

    # -- measures (after the backfill) -------------------------------------------------

    def _count(self, condition: Sql) -> Sql:
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self.slot.source, condition)

    def _count_with_firsts(self, condition: Sql) -> Sql:
        """Parents ``t`` matching ``condition`` on ``f.v``, their first child's value (one
        pass over the children and a join, never a lookup per parent)."""
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(self._with_firsts(), condition)

    def count_moved(self) -> Sql:
        """Parents with a child (the plain run's copy counts them)."""
        return self._count(self.family.has_children("t"))

    def count_restored(self) -> Sql:
        """Parents whose value comes from the JSONB (no child value)."""
        return self._count_with_firsts(
            sql.SQL("{} IS NOT NULL AND f.v IS NULL").format(self._stash_value())
        )

    def count_overridden(self) -> Sql:
        """Parents whose kept value another value of a child replaced."""
        return self._count_with_firsts(
            sql.SQL("{s} IS NOT NULL AND f.v IS NOT NULL AND f.v IS DISTINCT FROM {s}").format(
                s=self._stash_value()
            )
        )

    def count_disagreeing(self) -> Sql:
        """Children whose value is not their parent's first child's."""
        family = self.family
        return sql.SQL(
            "SELECT count(*) FROM {child} AS c JOIN {parent} AS t ON t.{key} = c.{fk}"
            " JOIN ({firsts}) AS f ON f.g = t.{key} WHERE c.{v} IS DISTINCT FROM f.v"
        ).format(
            child=family.child_ref,
            parent=family.parent_ref,
            key=ident(family.parent_key),
            fk=ident(family.child_fk),
            firsts=self.firsts(),
            v=ident(self.child_column),
        )

    def count_missing(self) -> Sql:
        """Parents whose new column is not what the plain run would give, or whose
        JSONB still holds the key."""
        slot = self.slot
        return self._count_with_firsts(
            sql.SQL("{} IS DISTINCT FROM COALESCE(f.v, {}) OR {}").format(
                column_of("t", slot.column), self._stash_value(), slot.holds_key
            )
        )

    def drop_kept(self) -> Sql:
        return sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(
            qualified(self.slot.table, self.slot.schema), ident(self.kept)
        )
