"""The toolkit's stash: what a refactor must keep but the application must not see.

One table, ``lossless_stash`` (in the schema of the tables being changed), holds:

- ``kind = 'column'``: the definition of a column an operation dropped (type, nullability,
  default, foreign keys), recorded from the catalog when the script runs, so that the
  inverse operation can re-create it exactly online;
- ``kind = 'jsonb_key'``: a key some column's values are stashed under right now
  (``column_name`` is the JSONB column, ``payload`` ``{"key": ..., "column": ...}``);
- ``kind = 'jsonb_was_null'``: the keys of rows whose JSONB was SQL NULL before a first
  value was stashed into it (``column_name`` is the JSONB column). The fact belongs to the
  row's JSONB, not to the column that happened to write into it first, so that columns
  stashed into one JSONB can come back in any order: the restore that leaves the JSONB
  exactly ``{}`` gives NULL back. A stash first forgets the marks of rows holding no
  stashed key any more, and the last restore of a JSONB forgets all of its marks;
- ``kind = 'jsonb_original'``: while an online restore runs, the values it moved out of a
  JSONB that re-stashing would not write back the same (JSON ``null``, another spelling),
  so that an abort gives them back exactly (``column_name`` is the restored column);
- ``kind = 'link'``: junction rows a collapse kept (``keep_extra_links``), re-inserted
  verbatim by a later promote.

The table is created on first use and dropped when it becomes empty, so a downgraded
database has exactly its original tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from toolkit.sql.attached import attached_json
from toolkit.sql.checks import do_block
from toolkit.sql.idents import Sql, column_of, ident, literal, qualified, render, type_clause
from toolkit.sql.lookups import column_definition_json, regclass

STASH_TABLE = "lossless_stash"
#: Stash kinds of the JSONB slots (see the module docstring and ``toolkit.sql.jsonb_slot``).
STASHED_KEY = "jsonb_key"
WAS_NULL = "jsonb_was_null"
ORIGINAL = "jsonb_original"


def stash_ref(schema: str | None) -> Sql:
    """The stash table's (optionally qualified) name."""
    return qualified(STASH_TABLE, schema)


def ensure_stash(schema: str | None) -> Sql:
    """Create the stash table unless it exists (no index: it is written in bulk and read
    by a few joins; ``analyze_stash`` after each bulk write keeps those joins hashed)."""
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


def analyze_stash(schema: str | None) -> Sql:
    """Give the planner the stash's statistics after a bulk write into it.

    Without them it guesses one row per stash condition and joins the stash to a table
    with nested loops (table rows times stash rows); with them it hashes.
    """
    return sql.SQL("ANALYZE {}").format(stash_ref(schema))


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
    return drop_if_empty(STASH_TABLE, schema)


def drop_if_empty(table: str, schema: str | None) -> Sql:
    """Drop one of the toolkit's own tables when nothing is left in it (a no-op when it
    does not exist)."""
    return do_block(
        sql.SQL(
            "BEGIN\n  IF {rel} IS NOT NULL THEN\n    IF NOT EXISTS (SELECT FROM {ref}) THEN\n"
            "      DROP TABLE {ref};\n    END IF;\n  END IF;\nEND"
        ).format(rel=regclass(table, schema), ref=qualified(table, schema))
    )


def record_column(
    table: str, column: str, *, schema: str | None, only_if_carried: bool = False
) -> Sql:
    """Record ``table.column``'s current definition (read from the catalog when the script
    runs, online and offline alike).

    The table is found under the session's ``search_path`` (like every other statement),
    but the definitions are printed under an empty one, so that every name in them
    (types, referenced tables, functions and sequences of defaults, indexes' expressions)
    is schema-qualified and the restore re-creates the same objects whatever its own
    ``search_path``. The session's path is put back before the insert.

    ``only_if_carried``: record only when the column carries something beyond its type,
    nullability and foreign keys (attached objects, a default, a collation): the column a
    ``move_fk_to_child`` made is re-made by the next one as it was unless a team added to it.
    """
    rel = sql.SQL("lossless_rel")
    insert = sql.SQL(
        "  INSERT INTO {stash} (kind, table_name, column_name, row_key, payload)"
        " VALUES ('column', {table}, {column}, '[]'::jsonb, lossless_payload);\n"
    ).format(stash=stash_ref(schema), table=literal(table), column=literal(column))
    if only_if_carried:
        insert = sql.SQL(
            "  IF jsonb_array_length(lossless_payload -> 'attached' -> 'statements') > 0"
            " OR lossless_payload -> 'attached' ->> 'collation' IS NOT NULL"
            " OR lossless_payload ->> 'default' IS NOT NULL THEN\n  {insert}  END IF;\n"
        ).format(insert=insert)
    return do_block(
        sql.SQL(
            "DECLARE\n  lossless_rel regclass := {regclass};\n"
            "  lossless_path text := current_setting('search_path');\n"
            "  lossless_payload jsonb;\nBEGIN\n"
            "  PERFORM set_config('search_path', '', true);\n"
            "  lossless_payload := {definition} || jsonb_build_object('attached', {attached});\n"
            "  PERFORM set_config('search_path', lossless_path, true);\n{insert}END"
        ).format(
            regclass=regclass(table, schema),
            definition=column_definition_json(table, column, schema, rel=rel),
            attached=attached_json(table, column, schema, rel=rel),
            insert=insert,
        )
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


def replay_column_settings(table: str, column: str, type_text: str, *, schema: str | None) -> Sql:
    """Give ``table.column``, when the script runs, the default and the collation recorded
    when it was dropped (offline, where the record cannot be read before); nothing if
    there is no record. The collation changes without a rewrite (same type, no index yet)."""
    alter = render(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} ").format(qualified(table, schema), ident(column))
    )
    return do_block(
        sql.SQL(
            "DECLARE\n  r jsonb;\nBEGIN\n  IF {rel} IS NOT NULL THEN\n"
            "    SELECT s.payload INTO r FROM {ref} AS s WHERE {entry} LIMIT 1;\n"
            "    IF r ->> 'default' IS NOT NULL THEN\n"
            "      EXECUTE {alter} || 'SET DEFAULT ' || (r ->> 'default');\n    END IF;\n"
            "    IF r -> 'attached' ->> 'collation' IS NOT NULL THEN\n"
            "      EXECUTE {alter} || {type} || ' COLLATE ' || (r -> 'attached' ->> 'collation');\n"
            "    END IF;\n  END IF;\nEND"
        ).format(
            rel=regclass(STASH_TABLE, schema),
            ref=stash_ref(schema),
            entry=entry("column", table, column),
            alter=literal(alter),
            type=literal("TYPE " + render(type_clause(type_text))),
        )
    )


def replay_attached_objects(table: str, column: str, *, schema: str | None) -> Sql:
    """Re-create, when the script runs, what was attached to ``table.column`` when it was
    dropped (its indexes, constraints, statistics, grants, comment: ``toolkit.sql.
    attached``), from the stash's record, and give its NOT NULL constraint the recorded
    name (PostgreSQL 18); nothing if there is no record."""
    return do_block(
        sql.SQL(
            "DECLARE\n  s text;\n  lossless_named text;\n  lossless_current text;\nBEGIN\n"
            "  IF {rel} IS NOT NULL THEN\n"
            "    FOR s IN SELECT jsonb_array_elements_text(s.payload -> 'attached'"
            " -> 'statements') FROM {ref} AS s WHERE {entry} LOOP\n"
            "      EXECUTE s;\n    END LOOP;\n"
            "    SELECT r.payload -> 'not_null' ->> 'name' INTO lossless_named FROM {ref} AS r"
            " WHERE {record} LIMIT 1;\n"
            "    SELECT n.conname INTO lossless_current FROM pg_constraint n JOIN pg_attribute a"
            " ON a.attrelid = n.conrelid AND n.conkey = ARRAY[a.attnum]"
            " WHERE n.conrelid = {table} AND n.contype = 'n' AND a.attname = {column};\n"
            "    IF lossless_current <> lossless_named THEN\n"
            "      EXECUTE format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', {table},"
            " lossless_current, lossless_named);\n    END IF;\n  END IF;\nEND"
        ).format(
            rel=regclass(STASH_TABLE, schema),
            ref=stash_ref(schema),
            entry=entry("column", table, column),
            record=entry("column", table, column, "r"),
            table=regclass(table, schema),
            column=literal(column),
        )
    )


def row_key_json(alias: str, key_columns: Sequence[str]) -> Sql:
    """The stash's identity of a row: a JSON array of its primary key values."""
    return sql.SQL("jsonb_build_array({})").format(
        sql.SQL(", ").join(column_of(alias, c) for c in key_columns)
    )
