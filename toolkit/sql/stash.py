"""The toolkit's stash: what a refactor must keep but the application must not see.

One table, ``lossless_stash`` (in the schema of the tables being changed), holds:

- ``kind = 'column'``: the definition of a column an operation dropped (type, nullability,
  default, foreign keys), recorded from the catalog when the script runs, so that the
  inverse operation can re-create it exactly online;
- ``kind = 'jsonb_null'``: the keys of rows whose JSONB was SQL NULL before a value was
  stashed into it (it became ``{"key": value}``; restoring must bring NULL back);
- ``kind = 'link'``: junction rows a collapse kept (``keep_extra_links``), re-inserted
  verbatim by a later promote.

The table is created on first use and dropped when it becomes empty, so a downgraded
database has exactly its original tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.catalog import column_definition_json, regclass
from toolkit.sql.checks import Check, do_block, missing_referent
from toolkit.sql.idents import (
    Sql,
    column_of,
    ident,
    is_json_type,
    literal,
    qualified,
    render,
    type_clause,
)

STASH_TABLE = "lossless_stash"


def stash_ref(schema: str | None) -> Sql:
    """The stash table's (optionally qualified) name."""
    return qualified(STASH_TABLE, schema)


def ensure_stash(schema: str | None) -> Sql:
    """Create the stash table unless it exists (no index: it is written in bulk, read once)."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (kind text NOT NULL, table_name text NOT NULL,"
        " column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb)"
    ).format(stash_ref(schema))


def entry(kind: str, table: str, column: str, alias: str = "s") -> Sql:
    """Condition on stash rows ``alias``: entries of ``kind`` for ``table.column``."""
    return sql.SQL("{a}.kind = {k} AND {a}.table_name = {t} AND {a}.column_name = {c}").format(
        a=ident(alias), k=literal(kind), t=literal(table), c=literal(column)
    )


def forget(kind: str, table: str, column: str, *, schema: str | None) -> Sql:
    """Delete the stash entries of one kind for ``table.column``."""
    return sql.SQL("DELETE FROM {} AS s WHERE {}").format(
        stash_ref(schema), entry(kind, table, column)
    )


def if_stash_exists(statement: Sql, schema: str | None) -> Sql:
    """Run ``statement`` only if the stash table exists when the script runs (offline)."""
    # PL/pgSQL plans the inner statement only once the table is known to exist.
    return do_block(
        sql.SQL("BEGIN\n  IF {} IS NOT NULL THEN\n    {};\n  END IF;\nEND").format(
            regclass(STASH_TABLE, schema), statement
        )
    )


def drop_stash_if_empty(schema: str | None) -> Sql:
    """Drop the stash table when nothing is left in it (a no-op when it does not exist)."""
    return do_block(
        sql.SQL(
            "BEGIN\n  IF {rel} IS NOT NULL THEN\n    IF NOT EXISTS (SELECT FROM {ref}) THEN\n"
            "      DROP TABLE {ref};\n    END IF;\n  END IF;\nEND"
        ).format(rel=regclass(STASH_TABLE, schema), ref=stash_ref(schema))
    )


def record_column(table: str, column: str, *, schema: str | None) -> Sql:
    """Record ``table.column``'s current definition (read from the catalog by the SQL itself)."""
    return sql.SQL(
        "INSERT INTO {} (kind, table_name, column_name, row_key, payload)"
        " SELECT 'column', {}, {}, '[]'::jsonb, {}"
    ).format(
        stash_ref(schema),
        literal(table),
        literal(column),
        column_definition_json(table, column, schema),
    )


def recorded_column(table: str, column: str, *, schema: str | None) -> Sql:
    """The recorded definition of ``table.column`` (online lookup; at most one row)."""
    return sql.SQL("SELECT s.payload FROM {} AS s WHERE {} LIMIT 1").format(
        stash_ref(schema), entry("column", table, column)
    )


def count_entries(kind: str, table: str, column: str, *, schema: str | None) -> Sql:
    """How many entries of one kind ``table.column`` has."""
    return sql.SQL("SELECT count(*) FROM {} AS s WHERE {}").format(
        stash_ref(schema), entry(kind, table, column)
    )


def replay_foreign_keys(table: str, column: str, *, schema: str | None) -> Sql:
    """Re-create, when the script runs, the foreign keys recorded for ``table.column``.

    Used offline when no foreign key was given: the definitions are PostgreSQL's own
    ``pg_get_constraintdef`` text, recorded when the column was dropped.
    """
    return do_block(
        sql.SQL(
            "DECLARE\n  fk jsonb;\nBEGIN\n  IF {rel} IS NOT NULL THEN\n"
            "    FOR fk IN SELECT jsonb_array_elements(s.payload -> 'foreign_keys')"
            " FROM {ref} AS s WHERE {entry} LOOP\n"
            "      EXECUTE 'ALTER TABLE ' || {target} || ' ADD CONSTRAINT '"
            " || quote_ident(fk ->> 'name') || ' ' || (fk ->> 'definition');\n"
            "    END LOOP;\n  END IF;\nEND"
        ).format(
            rel=regclass(STASH_TABLE, schema),
            ref=stash_ref(schema),
            entry=entry("column", table, column),
            target=literal(render(qualified(table, schema))),
        )
    )


def row_key_json(alias: str, key_columns: Sequence[str]) -> Sql:
    """The stash's identity of a row: a JSON array of its primary key values."""
    return sql.SQL("jsonb_build_array({})").format(
        sql.SQL(", ").join(column_of(alias, c) for c in key_columns)
    )


@dataclass(frozen=True)
class JsonbSlot:
    """Where a column's values live while stashed: ``table.jsonb_column -> key``.

    ``column`` is the stashed column (which may not exist at the moment), ``key_columns``
    the table's primary key; the builders alias the table ``t``.
    """

    table: str
    column: str
    jsonb_column: str
    key: str
    key_columns: tuple[str, ...]
    schema: str | None = None

    @property
    def ref(self) -> Sql:
        return qualified(self.table, self.schema)

    @property
    def source(self) -> Sql:
        return sql.SQL("{} AS t").format(self.ref)

    @property
    def jsonb(self) -> Sql:
        return column_of("t", self.jsonb_column)

    @property
    def value(self) -> Sql:
        return column_of("t", self.column)

    @property
    def holds_key(self) -> Sql:
        """Rows whose JSONB is an object holding the key (arrays can "contain" it too);
        never NULL, so that ``NOT holds_key`` selects SQL NULL JSONB too."""
        return sql.SQL("(jsonb_typeof({j}) = 'object' AND {j} ? {k}) IS TRUE").format(
            j=self.jsonb, k=literal(self.key)
        )

    def _and(self, row_filter: Sql | None) -> Sql:
        return sql.SQL(" AND {}").format(row_filter) if row_filter is not None else sql.SQL("")

    def checks(self, row_filter: Sql | None = None) -> list[Check]:
        """What makes stashing unsafe: a non-object JSONB that would need the key, a key
        already present (restore could not tell it from the stashed one)."""
        return [
            Check(
                self.table,
                self.jsonb_column,
                f"hold a JSONB that is not an object (array, scalar or JSON null) where"
                f" {self.column} must be stashed under {self.key!r}",
                sql.SQL(
                    "{v} IS NOT NULL{f} AND {j} IS NOT NULL AND jsonb_typeof({j}) <> 'object'"
                ).format(v=self.value, f=self._and(row_filter), j=self.jsonb),
                "fix those values (e.g. wrap them in an object) before the migration",
            ),
            Check(
                self.table,
                self.jsonb_column,
                f"already hold the key {self.key!r}",
                self.holds_key,
                "rename or remove that key first, or pass another key=",
            ),
        ]

    def orphan_check(
        self, type_text: str, referent: tuple[str | None, str, str], row_filter: Sql | None = None
    ) -> Check:
        """Stashed values that would come back pointing to no row of ``referent``."""
        ref_schema, ref_table, ref_key = referent
        return Check(
            self.table,
            self.jsonb_column,
            f"hold under {self.key!r} a {self.column} that {ref_table}.{ref_key} no longer has",
            sql.SQL("{}{} AND {}").format(
                self.holds_key,
                self._and(row_filter),
                missing_referent(
                    sql.SQL("({} ->> {})::{}").format(
                        self.jsonb, literal(self.key), type_clause(type_text)
                    ),
                    ref_table,
                    ref_key,
                    ref_schema,
                ),
            ),
            "restore the referenced rows or remove those keys first",
        )

    def mark_null_jsonb(self, row_filter: Sql | None = None) -> Sql:
        """Remember the rows whose JSONB is NULL and is about to receive the key."""
        return sql.SQL(
            "INSERT INTO {stash} (kind, table_name, column_name, row_key)"
            " SELECT 'jsonb_null', {table}, {column}, {row_key} FROM {source}"
            " WHERE {v} IS NOT NULL AND {j} IS NULL{f}"
        ).format(
            stash=stash_ref(self.schema),
            table=literal(self.table),
            column=literal(self.column),
            row_key=row_key_json("t", self.key_columns),
            source=self.source,
            v=self.value,
            j=self.jsonb,
            f=self._and(row_filter),
        )

    def write_values(self, row_filter: Sql | None = None) -> Sql:
        """Put each non-NULL value into the JSONB under the key (``to_jsonb`` keeps its text)."""
        return sql.SQL(
            "UPDATE {source} SET {jcol} = COALESCE({j}, '{{}}'::jsonb)"
            " || jsonb_build_object({k}, to_jsonb({v})) WHERE {v} IS NOT NULL{f}"
        ).format(
            source=self.source,
            jcol=ident(self.jsonb_column),
            j=self.jsonb,
            k=literal(self.key),
            v=self.value,
            f=self._and(row_filter),
        )

    def decoded(self, type_text: str) -> Sql:
        """The stashed value cast back to ``type_text`` (the column must exist again).

        Scalars go through their text form, which ``to_jsonb`` wrote exactly (uuid,
        timestamps with their offset, numeric with its scale...). Arrays and composites go
        through ``jsonb_populate_record`` on the table's own row type, JSON types as is.
        """
        raw = sql.SQL("({} -> {})").format(self.jsonb, literal(self.key))
        type_ = type_clause(type_text)
        if is_json_type(type_text):
            return sql.SQL("{}::{}").format(raw, type_)
        return sql.SQL(
            "CASE WHEN jsonb_typeof({raw}) IN ('object', 'array') THEN"
            " (jsonb_populate_record(NULL::{ref}, jsonb_build_object({col}, {raw}))).{c}"
            " ELSE ({j} ->> {k})::{type} END"
        ).format(
            raw=raw,
            ref=self.ref,
            col=literal(self.column),
            c=ident(self.column),
            j=self.jsonb,
            k=literal(self.key),
            type=type_,
        )

    def restore_values(self, type_text: str, *, keep_existing: bool = False) -> Sql:
        """Move the stashed values back into the column and remove the key.

        ``keep_existing``: a value the column already holds wins over the stashed one.
        """
        value = self.decoded(type_text)
        if keep_existing:
            value = sql.SQL("COALESCE({}, {})").format(self.value, value)
        return sql.SQL("UPDATE {} SET {} = {}, {} = {} - {} WHERE {}").format(
            self.source,
            ident(self.column),
            value,
            ident(self.jsonb_column),
            self.jsonb,
            literal(self.key),
            self.holds_key,
        )

    def pending_count(self) -> Sql:
        """How many rows hold a stashed value their (re-added) column does not have yet."""
        return sql.SQL("SELECT count(*) FROM {} WHERE {} AND {} IS NULL").format(
            self.source, self.holds_key, self.value
        )

    def overridden_count(self, type_text: str) -> Sql:
        """How many rows hold a stashed value other than the one their column already got."""
        return sql.SQL(
            "SELECT count(*) FROM {} WHERE {} AND {v} IS NOT NULL AND {v} IS DISTINCT FROM {d}"
        ).format(self.source, self.holds_key, v=self.value, d=self.decoded(type_text))

    def restore_null_jsonb(self) -> Sql:
        """Give back SQL NULL to rows that had it, unless the application added keys since."""
        return sql.SQL(
            "UPDATE {source} SET {jcol} = NULL FROM {stash} AS s WHERE {entry}"
            " AND s.row_key = {row_key} AND {j} = '{{}}'::jsonb"
        ).format(
            source=self.source,
            jcol=ident(self.jsonb_column),
            stash=stash_ref(self.schema),
            entry=entry("jsonb_null", self.table, self.column),
            row_key=row_key_json("t", self.key_columns),
            j=self.jsonb,
        )

    def forget_marks(self) -> Sql:
        """Delete this slot's NULL marks."""
        return forget("jsonb_null", self.table, self.column, schema=self.schema)
