"""Online mode of ``move_fk_to_child``: the mirror triggers, batches and measures that keep
a parent's value on its children, and the value of childless parents in their JSONB.

While the backfill runs, the application may insert, re-parent or delete children and
change a parent's value or JSONB. Three row triggers keep the new structure as a plain
run at that moment would leave it:

- on the child, BEFORE INSERT or UPDATE of the link: the new column takes the parent's
  value (the parent row is locked ``FOR NO KEY UPDATE``, so that a concurrent change of
  the value cannot slip between the read and the commit);
- on the child, AFTER INSERT, UPDATE of the link or DELETE: a parent that gained its
  first child, or lost its last one, is touched (its JSONB set to itself), which fires
- on the parent, BEFORE INSERT or UPDATE of the value or the JSONB: a changed value is
  written to the children; a childless parent with a value holds it under the key (a
  NULL JSONB is marked, as the stash marks it), any other parent does not (a JSONB
  the trigger had marked and that is left ``{}`` is NULL again).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.family import Family
from toolkit.sql.idents import Sql, column_of, ident, literal
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.stash import WAS_NULL, entry, row_key_json, stash_ref


@dataclass(frozen=True)
class DownMirror:
    """``family``'s parents' ``slot.column`` moving to the children's ``child_column``,
    childless parents' values kept in ``slot``."""

    family: Family
    slot: JsonbSlot
    child_column: str

    def _names(self) -> dict[str, Sql]:
        family, slot = self.family, self.slot
        return {
            "parent": family.parent_ref,
            "child": family.child_ref,
            "key": ident(family.parent_key),
            "fk": ident(family.child_fk),
            "pcol": ident(slot.column),
            "ccol": ident(self.child_column),
            "jcol": ident(slot.jsonb_column),
            "k": literal(slot.key),
            "stash": stash_ref(slot.schema),
        }

    def child_value_body(self) -> Sql:
        """BEFORE INSERT / UPDATE of the link on the child: the parent's value."""
        return sql.SQL(
            "SELECT p.{pcol} INTO NEW.{ccol} FROM {parent} AS p WHERE p.{key} = NEW.{fk}"
            " FOR NO KEY UPDATE;\nRETURN NEW;"
        ).format(**self._names())

    def child_parents_body(self) -> Sql:
        """AFTER INSERT / UPDATE of the link / DELETE on the child: touch the parents
        whose key must come or go (the parent's trigger decides)."""
        holds = sql.SQL("(jsonb_typeof(p.{j}) = 'object' AND p.{j} ? {k}) IS TRUE").format(
            j=ident(self.slot.jsonb_column), k=literal(self.slot.key)
        )
        return sql.SQL(
            "IF TG_OP <> 'DELETE' THEN\n"
            "  UPDATE {parent} AS p SET {jcol} = p.{jcol} WHERE p.{key} = NEW.{fk} AND {holds};\n"
            "END IF;\n"
            "IF TG_OP <> 'INSERT' THEN\n"
            "  UPDATE {parent} AS p SET {jcol} = p.{jcol} WHERE p.{key} = OLD.{fk}"
            " AND p.{pcol} IS NOT NULL AND NOT {holds} AND {childless};\n"
            "END IF;\nRETURN NULL;"
        ).format(holds=holds, childless=self.family.childless("p"), **self._names())

    def parent_body(self) -> Sql:
        """BEFORE INSERT / UPDATE of the value or the JSONB on the parent."""
        slot = self.slot
        mark = entry(WAS_NULL, slot.table, slot.jsonb_column, "m")
        put = slot.mirror_put(
            f"lossless online: {slot.table}.{slot.jsonb_column} must be a JSON object (or NULL)"
            f" to keep {slot.column} of a parent without {self.family.child} under key"
            f" {slot.key!r}"
        )
        return sql.SQL(
            "IF TG_OP = 'UPDATE' AND NEW.{pcol} IS DISTINCT FROM OLD.{pcol} THEN\n"
            "  UPDATE {child} AS c SET {ccol} = NEW.{pcol} WHERE c.{fk} = NEW.{key};\n"
            "END IF;\n"
            "IF NEW.{pcol} IS NOT NULL AND NOT EXISTS"
            " (SELECT FROM {child} AS c WHERE c.{fk} = NEW.{key}) THEN\n{put}"
            "ELSIF jsonb_typeof(NEW.{jcol}) = 'object' AND NEW.{jcol} ? {k} THEN\n"
            "  NEW.{jcol} := NEW.{jcol} - {k};\n"
            "  IF NEW.{jcol} = '{{}}'::jsonb AND EXISTS"
            " (SELECT FROM {stash} AS m WHERE {mark} AND m.row_key = {row_key}) THEN\n"
            "    NEW.{jcol} := NULL;\n"
            "    DELETE FROM {stash} AS m WHERE {mark} AND m.row_key = {row_key};\n"
            "  END IF;\n"
            "END IF;\nRETURN NEW;"
        ).format(
            put=put,
            row_key=row_key_json("new", slot.key_columns),
            mark=mark,
            **self._names(),
        )

    def copy_down(self, where: Sql) -> Sql:
        """Give the children of the parents ``t`` matching ``where`` their parent's value
        (those the mirror already gave it are skipped)."""
        return sql.SQL(
            "UPDATE {child} AS c SET {ccol} = t.{pcol} FROM {parent} AS t"
            " WHERE c.{fk} = t.{key} AND {where} AND c.{ccol} IS DISTINCT FROM t.{pcol}"
        ).format(where=where, **self._names())

    def count_moved(self) -> Sql:
        """Children whose parent has a value (what a plain run's copy counts)."""
        return sql.SQL(
            "SELECT count(*) FROM {child} AS c JOIN {parent} AS p ON p.{key} = c.{fk}"
            " WHERE p.{pcol} IS NOT NULL"
        ).format(**self._names())

    def count_stashed(self) -> Sql:
        """Parents holding the key."""
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            self.slot.source, self.slot.holds_key
        )

    def count_was_null(self) -> Sql:
        """Parents holding the key that are marked as having had a NULL JSONB: read from
        the marks, each row found by its primary key (never a scan of the stash per row)."""
        slot = self.slot
        keys = slot.key_columns
        typed = sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, m.row_key -> {}").format(literal(k), sql.Literal(i))
                for i, k in enumerate(keys)
            )
        )
        return sql.SQL(
            "SELECT count(DISTINCT m.row_key) FROM {stash} AS m"
            " CROSS JOIN LATERAL jsonb_populate_record(NULL::{ref}, {typed}) AS k"
            " JOIN {ref} AS t ON {on} WHERE {mark} AND {holds}"
        ).format(
            stash=stash_ref(slot.schema),
            ref=slot.ref,
            typed=typed,
            on=sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(column_of("t", k), column_of("k", k)) for k in keys
            ),
            mark=entry(WAS_NULL, slot.table, slot.jsonb_column, "m"),
            holds=slot.holds_key,
        )

    def count_missing(self) -> Sql:
        """Children whose new column is not their parent's value, plus parents whose
        JSONB does not hold exactly what a plain run would put there."""
        slot = self.slot
        wrong = sql.SQL(
            "CASE WHEN {v} IS NOT NULL AND {childless} THEN ({j} -> {k}) IS DISTINCT FROM"
            " to_jsonb({v}) ELSE {holds} END"
        ).format(
            v=column_of("t", slot.column),
            childless=self.family.childless("t"),
            j=slot.jsonb,
            k=literal(slot.key),
            holds=slot.holds_key,
        )
        return sql.SQL("SELECT ({}) + (SELECT count(*) FROM {} WHERE {})").format(
            self.family.disagreeing_children(self.child_column, slot.column), slot.source, wrong
        )
