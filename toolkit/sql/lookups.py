"""Catalog queries: primary keys, columns and foreign keys, looked up by name at run time.

Tables are resolved with ``to_regclass`` on the quoted (optionally schema-qualified) name,
so the lookup follows ``search_path`` exactly like the DDL that will run next.
"""

from __future__ import annotations

from psycopg import sql

from toolkit.sql.idents import Sql, literal, qualified, render

# The referenced columns of foreign key ``c``, in key order.
_REFERENT_COLUMNS = sql.SQL(
    "ARRAY(SELECT ra.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)"
    " JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.attnum"
    " ORDER BY k.ord)"
)


def regclass(table: str, schema: str | None = None) -> Sql:
    """``to_regclass(...)`` for ``table``: NULL when it does not exist."""
    return sql.SQL("to_regclass({})").format(literal(render(qualified(table, schema))))


def table_exists(table: str, schema: str | None = None) -> Sql:
    """One boolean: whether ``table`` exists."""
    return sql.SQL("SELECT {} IS NOT NULL").format(regclass(table, schema))


def primary_key(table: str, schema: str | None = None) -> Sql:
    """The primary key's column names, in key order."""
    return sql.SQL(
        "SELECT a.attname FROM pg_index i"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = {rel} AND i.indisprimary ORDER BY k.ord"
    ).format(rel=regclass(table, schema))


def column(table: str, name: str, schema: str | None = None) -> Sql:
    """One row for column ``name``: type (``format_type``), nullable, default expression."""
    return sql.SQL(
        "SELECT format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = {rel} AND a.attname = {name} AND a.attnum > 0"
        " AND NOT a.attisdropped"
    ).format(rel=regclass(table, schema), name=literal(name))


def column_definition_json(
    table: str, name: str, schema: str | None = None, *, rel: Sql | None = None
) -> Sql:
    """A jsonb expression describing column ``name`` as the catalog has it right now.

    ``{"type", "nullable", "default", "foreign_keys": [{"name", "definition",
    "referent_schema", "referent_table", "referent_columns"}], "not_null": {"name",
    "definition"}}`` (``not_null``: the NOT NULL constraint PostgreSQL 18 names, else
    null); plain SQL, so it records
    the truth at the moment the script runs, online or offline alike. ``rel``: the table
    as a regclass expression, if not ``to_regclass`` of ``table``.
    """
    return sql.SQL(
        "(SELECT jsonb_build_object('type', format_type(a.atttypid, a.atttypmod),"
        " 'nullable', NOT a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid),"
        " 'foreign_keys', COALESCE((SELECT jsonb_agg(jsonb_build_object("
        "'name', c.conname, 'definition', pg_get_constraintdef(c.oid),"
        " 'referent_schema', rn.nspname, 'referent_table', r.relname,"
        " 'referent_columns', {refcols}) ORDER BY c.conname)"
        " FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid"
        " JOIN pg_namespace rn ON rn.oid = r.relnamespace"
        " WHERE c.conrelid = a.attrelid AND c.contype = 'f' AND c.conkey = ARRAY[a.attnum]),"
        " '[]'::jsonb),"
        # PostgreSQL 18 names NOT NULL constraints (pg_constraint contype 'n')
        " 'not_null', (SELECT jsonb_build_object('name', n.conname,"
        " 'definition', pg_get_constraintdef(n.oid)) FROM pg_constraint n"
        " WHERE n.conrelid = a.attrelid AND n.contype = 'n' AND n.conkey = ARRAY[a.attnum]))"
        " FROM pg_attribute a"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = {rel} AND a.attname = {name} AND a.attnum > 0"
        " AND NOT a.attisdropped)"
    ).format(refcols=_REFERENT_COLUMNS, rel=rel or regclass(table, schema), name=literal(name))


def foreign_keys_on(table: str, name: str, schema: str | None = None) -> Sql:
    """Every foreign key of ``table`` that involves column ``name``.

    Columns: constraint name, definition, referenced schema, table, columns (array),
    validated, on-delete and on-update action codes, deferrable, initially deferred,
    number of local columns, match type code.
    """
    return sql.SQL(
        "SELECT c.conname, pg_get_constraintdef(c.oid), n.nspname, r.relname, {refcols},"
        " c.convalidated, c.confdeltype::text, c.confupdtype::text, c.condeferrable,"
        " c.condeferred, cardinality(c.conkey), c.confmatchtype::text"
        " FROM pg_constraint c"
        " JOIN pg_class r ON r.oid = c.confrelid"
        " JOIN pg_namespace n ON n.oid = r.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
        " WHERE c.contype = 'f' AND c.conrelid = {rel} AND a.attname = {name}"
        " ORDER BY c.conname"
    ).format(refcols=_REFERENT_COLUMNS, rel=regclass(table, schema), name=literal(name))
