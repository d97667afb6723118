"""What uses a column in a way an operation cannot carry, found before anything changes.

An operation that drops a column re-creates what is *attached* to it (``toolkit.sql.
attached``: its indexes, UNIQUE/CHECK/EXCLUDE constraints, extended statistics, grants,
comment, statistics target, its own single-column foreign keys). Everything else that
depends on the column would either make ``DROP COLUMN`` fail after the data copy
(PostgreSQL's ``DependentObjectsStillExist``) or silently go with it, so it is refused up
front, by name:

- views and materialized views, rules;
- row-level security policies;
- triggers that name it (``UPDATE OF column``, ``WHEN``);
- generated columns computed from it;
- the primary key, multi-column foreign keys, and foreign keys of any table that
  reference it;
- anything else ``pg_depend`` lists (SQL-standard function bodies, publications...),
  described by ``pg_describe_object``.

``row_security_hides(table)`` is the other up-front refusal: when row-level security is
active for the current role (``row_security_active``), the operation's statements would
see only some rows and drop the column for all of them.

Pure SQL builders; the queries return one row per object: ``(kind, description)``.
"""

from __future__ import annotations

from psycopg import sql

from toolkit.sql.idents import Sql, literal
from toolkit.sql.lookups import regclass

# Every object depending on column (rel, attnum), with a kind and a description. Indexes,
# the column's own default and sequences, extended statistics and constraints are left to
# the constraint branch and to ``attached`` (they are carried, or refused below).
_DEPENDENTS = """
WITH col AS (
    SELECT a.attrelid, a.attnum FROM pg_attribute a
    WHERE a.attrelid = {rel} AND a.attname = {name} AND a.attnum > 0 AND NOT a.attisdropped
),
deps AS (
    SELECT DISTINCT d.classid, d.objid, d.objsubid FROM pg_depend d JOIN col
      ON d.refclassid = 'pg_class'::regclass AND d.refobjid = col.attrelid
     AND d.refobjsubid = col.attnum
    WHERE d.deptype IN ('n', 'a')
)
SELECT kind, what FROM (
    SELECT CASE WHEN rw.rulename <> '_RETURN' THEN 'rule'
                WHEN c.relkind = 'm' THEN 'materialized view' ELSE 'view' END AS kind,
           CASE WHEN rw.rulename <> '_RETURN'
                THEN quote_ident(rw.rulename) || ' on ' || c.oid::regclass::text
                ELSE c.oid::regclass::text END AS what
    FROM deps JOIN pg_rewrite rw ON deps.classid = 'pg_rewrite'::regclass AND rw.oid = deps.objid
    JOIN pg_class c ON c.oid = rw.ev_class
    UNION
    SELECT 'policy', quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text
    FROM deps JOIN pg_policy p ON deps.classid = 'pg_policy'::regclass AND p.oid = deps.objid
    UNION
    SELECT 'trigger', quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text
    FROM deps JOIN pg_trigger t ON deps.classid = 'pg_trigger'::regclass AND t.oid = deps.objid
    WHERE NOT t.tgisinternal
    UNION
    SELECT 'generated column', quote_ident(ga.attname) || ' of ' || ad.adrelid::regclass::text
    FROM deps JOIN pg_attrdef ad ON deps.classid = 'pg_attrdef'::regclass AND ad.oid = deps.objid
    JOIN pg_attribute ga ON ga.attrelid = ad.adrelid AND ga.attnum = ad.adnum
    CROSS JOIN col WHERE ga.attnum <> col.attnum
    UNION
    SELECT CASE con.contype WHEN 'p' THEN 'primary key' ELSE 'foreign key' END,
           quote_ident(con.conname) || ' on ' || con.conrelid::regclass::text
    FROM pg_constraint con CROSS JOIN col
    WHERE (con.conrelid = col.attrelid AND con.contype = 'p' AND col.attnum = ANY (con.conkey))
       OR (con.conrelid = col.attrelid AND con.contype = 'f'
           AND col.attnum = ANY (con.conkey) AND cardinality(con.conkey) > 1)
       OR (con.confrelid = col.attrelid AND con.contype = 'f'
           AND col.attnum = ANY (con.confkey))
    UNION
    SELECT 'object', pg_describe_object(deps.classid, deps.objid, deps.objsubid)
    FROM deps
    WHERE deps.classid NOT IN ('pg_rewrite'::regclass, 'pg_policy'::regclass,
                               'pg_trigger'::regclass, 'pg_attrdef'::regclass,
                               'pg_class'::regclass, 'pg_constraint'::regclass,
                               'pg_statistic_ext'::regclass)
) found
ORDER BY kind, what
"""


def blocking_dependents(table: str, column: str, schema: str | None = None) -> Sql:
    """``(kind, description)`` of every object using ``table.column`` that an operation
    dropping the column cannot carry (see the module docstring)."""
    return sql.SQL(_DEPENDENTS).format(rel=regclass(table, schema), name=literal(column))


def row_security_hides(table: str, schema: str | None = None) -> Sql:
    """One row ``(current_user, policies)`` if row-level security applies to the current
    role on ``table`` (its statements would see only the rows the policies let through);
    no row otherwise."""
    return sql.SQL(
        "SELECT current_user::text AS role,"
        " coalesce((SELECT string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname)"
        " FROM pg_policy p WHERE p.polrelid = {rel}), '(no policy: every row is hidden)')"
        " AS policies"
        " WHERE row_security_active({rel})"
    ).format(rel=regclass(table, schema))


def inheritance_blocks(table: str, schema: str | None = None, column: str | None = None) -> Sql:
    """``(kind, description)`` of what makes ``table`` part of a table-inheritance
    hierarchy an operation cannot be exact on: its inheritance children (not partitions),
    and, if ``column`` is a column the operation drops, that it is inherited from a parent.

    A parent's statements (``UPDATE`` without ``ONLY``, ``ADD`` / ``DROP COLUMN``) reach
    its children too, whose rows its primary key does not tell apart from the parent's
    (a primary key is not inherited); an inherited column cannot be dropped.
    """
    return sql.SQL(
        "SELECT 'inheritance child' AS kind, i.inhrelid::regclass::text AS what FROM pg_inherits i"
        " JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE i.inhparent = {rel} AND p.relkind = 'r'"
        " UNION ALL"
        " SELECT 'column inherited from', string_agg(i.inhparent::regclass::text, ', ')"
        " FROM pg_attribute a JOIN pg_inherits i ON i.inhrelid = a.attrelid"
        " WHERE a.attrelid = {rel} AND a.attname = {name} AND a.attinhcount > 0"
        " HAVING count(*) > 0"
        " ORDER BY 1, 2"
    ).format(rel=regclass(table, schema), name=literal(column) if column else sql.SQL("NULL"))


def describe(found: list[tuple[str, str]]) -> str:
    """``view v, trigger t on s`` for a refusal message."""
    return ", ".join(f"{kind} {what}" for kind, what in found)


def payload_columns(table: str, known: list[str], schema: str | None = None) -> Sql:
    """The columns of ``table`` other than ``known``, in table order: ``(what)`` rows.

    A junction's payload (``weight``, ``note``...): what a collapse would drop with it."""
    others = sql.SQL(", ").join(literal(name) for name in known)
    return sql.SQL(
        "SELECT a.attname::text AS what FROM pg_attribute a WHERE a.attrelid = {rel}"
        " AND a.attnum > 0 AND NOT a.attisdropped AND a.attname::text NOT IN ({others})"
        " ORDER BY a.attnum"
    ).format(rel=regclass(table, schema), others=others)
