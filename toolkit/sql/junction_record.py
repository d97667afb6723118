"""A junction's own definition and links, recorded by a collapse for the promote back.

A collapse that the promote back is to undo exactly records, before it drops the
junction, in the stash: one with ``keep_extra_links``, and one of a junction the toolkit
did not make (no record of the FK column in the stash: a hand-made junction, or one
whose column's record is gone). A collapse without ``keep_extra_links`` of a junction a
promote made is that promote's inverse: it records nothing, so the database is again
what it was before the promote (the links' own ``id`` and ``created_at`` go, and a
promote makes new ones: its result says so). The records:

- ``kind = 'junction'`` (``table_name``/``column_name``: the owner table and the FK
  column the junction becomes): ``junction_definition_json``, the junction as the
  catalog has it when the script runs (plain SQL, so offline scripts record it too),
  printed under an empty ``search_path`` so that every name is schema-qualified:

  - ``create``: ``CREATE [UNLOGGED] TABLE`` with every column in its order, type,
    collation, default, identity or generation, ``NOT NULL`` (under its PostgreSQL 18
    constraint name) and the table's storage options;
  - ``before_load``: the identity sequences' positions (``setval``), set before any link
    is written so that new links continue after the recorded ones;
  - ``statements``, run once the links are back: the owner, every constraint by name
    (``pg_get_constraintdef``: every option) and its comment, every other index
    (``pg_get_indexdef``), ``CLUSTER ON``, ``REPLICA IDENTITY``, index statistics targets
    and comments, extended statistics, every column's own settings, comments and grants
    (``toolkit.sql.attached``), ``OWNED BY`` of ``serial`` sequences (kept while the
    junction is gone: ``detach_junction_sequences``), the table's comment and grants,
    row-level security and its policies, triggers in their enabled state;
  - ``columns``, ``constraints`` (name, type, columns, referent, ``ON DELETE``) and
    ``indexes``: what a hand-written promote's arguments are compared with;
  - ``column_recorded``: whether the FK column had a record when the collapse ran (it
    had none: the promote back deletes the one it makes, as it was not there before).

- ``kind = 'link'``: the first link of every owner (and with ``keep_extra_links`` every
  link of owners with several), as the exact text of the junction row (``row::text``:
  arrays keep their bounds, every type its own input syntax), ``first`` its referent.
"""

from __future__ import annotations

from psycopg import sql

from toolkit.sql import triggers
from toolkit.sql.attached import _COLUMN, _STATISTICS
from toolkit.sql.checks import do_block
from toolkit.sql.ddl import ForeignKeySpec
from toolkit.sql.idents import Sql, column_of, ident, literal, qualified
from toolkit.sql.junction import JunctionShape
from toolkit.sql.lookups import regclass
from toolkit.sql.ordering import order_sql
from toolkit.sql.stash import STASH_TABLE, entry, row_key_json, stash_ref

JUNCTION_KIND = "junction"

# Fragments below refer to: c (the junction's pg_class row), t (its qualified name as text).
_CREATE = """
SELECT 'CREATE ' || CASE c.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END || 'TABLE '
    || t || ' (' || string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid,
    a.atttypmod) || CASE WHEN a.attcollation <> ty.typcollation THEN ' COLLATE '
    || (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co
        JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation)
    ELSE '' END
    || CASE WHEN a.attgenerated <> '' THEN ' GENERATED ALWAYS AS ('
         || pg_get_expr(d.adbin, d.adrelid) || ')'
         || CASE a.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END
       WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)
       ELSE '' END
    || CASE WHEN a.attidentity <> '' THEN ' GENERATED '
         || CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END
         || ' AS IDENTITY (SEQUENCE NAME ' || quote_ident(sn.nspname) || '.'
         || quote_ident(sc.relname) || ' START WITH ' || q.seqstart || ' INCREMENT BY '
         || q.seqincrement || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' || q.seqmax || ' CACHE '
         || q.seqcache || CASE WHEN q.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END || ')'
       ELSE '' END
    || CASE WHEN a.attnotnull THEN coalesce(' CONSTRAINT ' || quote_ident((
         SELECT n.conname FROM pg_constraint n WHERE n.conrelid = c.oid AND n.contype = 'n'
            AND n.conkey = ARRAY[a.attnum])), '') || ' NOT NULL' ELSE '' END,
    ', ' ORDER BY a.attnum) || ')'
    || coalesce(' WITH (' || array_to_string(c.reloptions, ', ') || ')', '')
FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_depend sd ON a.attidentity <> '' AND sd.classid = 'pg_class'::regclass
  AND sd.refclassid = 'pg_class'::regclass AND sd.refobjid = a.attrelid
  AND sd.refobjsubid = a.attnum AND sd.deptype = 'i'
LEFT JOIN pg_class sc ON sc.oid = sd.objid
LEFT JOIN pg_namespace sn ON sn.oid = sc.relnamespace
LEFT JOIN pg_sequence q ON q.seqrelid = sc.oid
WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
"""

_BEFORE_LOAD = """
SELECT coalesce(jsonb_agg('SELECT setval(' || quote_literal(quote_ident(sn.nspname) || '.'
       || quote_ident(sc.relname)) || ', ' || pg_sequence_last_value(sc.oid) || ')'), '[]')
FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = c.oid AND d.refobjsubid > 0 AND d.deptype = 'i'
  AND CASE WHEN sc.relkind = 'S' THEN pg_sequence_last_value(sc.oid) IS NOT NULL END
"""

# The table's own objects, in the order they must be re-created once the links are back.
_TABLE = """
SELECT 1, 'ALTER TABLE ' || t || ' OWNER TO ' || quote_ident(pg_get_userbyid(c.relowner))
WHERE c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
UNION ALL
SELECT 10 + CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3
                 ELSE 4 END,
       'ALTER TABLE ' || t || ' ADD CONSTRAINT ' || quote_ident(con.conname) || ' '
       || pg_get_constraintdef(con.oid)
FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype IN ('p', 'u', 'x', 'c', 'f')
UNION ALL
SELECT 15, 'COMMENT ON CONSTRAINT ' || quote_ident(con.conname) || ' ON ' || t || ' IS '
       || quote_literal(dsc.description)
FROM pg_constraint con
JOIN pg_description dsc ON dsc.objoid = con.oid AND dsc.classoid = 'pg_constraint'::regclass
WHERE con.conrelid = c.oid
UNION ALL
SELECT 20, pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = c.oid AND NOT EXISTS (SELECT FROM pg_constraint k
      WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT 21, 'ALTER TABLE ' || t || ' CLUSTER ON ' || quote_ident(ic.relname)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = c.oid AND i.indisclustered
UNION ALL
SELECT 21, 'ALTER TABLE ' || t || ' REPLICA IDENTITY ' || CASE c.relreplident
       WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL' ELSE 'USING INDEX ' || quote_ident((
       SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
       WHERE i.indrelid = c.oid AND i.indisreplident)) END
WHERE c.relreplident <> 'd'
UNION ALL
SELECT 22, 'ALTER INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname)
       || ' ALTER COLUMN ' || ia.attnum || ' SET STATISTICS ' || ia.attstattarget
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_attribute ia ON ia.attrelid = ic.oid AND ia.attstattarget >= 0
WHERE i.indrelid = c.oid
UNION ALL
SELECT 22, 'COMMENT ON INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname)
       || ' IS ' || quote_literal(dsc.description)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_description dsc ON dsc.objoid = ic.oid AND dsc.classoid = 'pg_class'::regclass
WHERE i.indrelid = c.oid
UNION ALL
SELECT 50, 'COMMENT ON TABLE ' || t || ' IS ' || quote_literal(dsc.description)
FROM pg_description dsc
WHERE dsc.objoid = c.oid AND dsc.classoid = 'pg_class'::regclass AND dsc.objsubid = 0
UNION ALL
SELECT 51, 'REVOKE ALL ON ' || t || ' FROM ' || quote_ident(pg_get_userbyid(c.relowner))
WHERE c.relacl IS NOT NULL
UNION ALL
SELECT 52, 'GRANT ' || g.privilege_type || ' ON ' || t || ' TO '
       || CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END
       || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
FROM aclexplode(c.relacl) AS g
UNION ALL
SELECT 53, 'ALTER TABLE ' || t || ' ENABLE ROW LEVEL SECURITY' WHERE c.relrowsecurity
UNION ALL
SELECT 53, 'ALTER TABLE ' || t || ' FORCE ROW LEVEL SECURITY' WHERE c.relforcerowsecurity
UNION ALL
SELECT 54, 'CREATE POLICY ' || quote_ident(p.policyname) || ' ON ' || t || ' AS '
       || p.permissive || ' FOR ' || p.cmd || ' TO ' || (SELECT string_agg(CASE r
          WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) AS r)
       || coalesce(' USING (' || p.qual || ')', '')
       || coalesce(' WITH CHECK (' || p.with_check || ')', '')
FROM pg_policies p JOIN pg_namespace pn ON pn.nspname = p.schemaname
WHERE pn.oid = c.relnamespace AND p.tablename = c.relname
UNION ALL
SELECT 60, pg_get_triggerdef(tg.oid) FROM pg_trigger tg
WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal
UNION ALL
SELECT 61, 'ALTER TABLE ' || t || CASE m.mode WHEN 'D' THEN ' DISABLE'
       WHEN 'R' THEN ' ENABLE REPLICA' ELSE ' ENABLE ALWAYS' END || ' TRIGGER '
       || quote_ident(tg.tgname)
FROM pg_trigger tg CROSS JOIN LATERAL (
    SELECT coalesce({quiet} ->> tg.tgname, tg.tgenabled::text) AS mode) AS m
WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal AND m.mode <> 'O'
UNION ALL
SELECT 61, 'COMMENT ON TRIGGER ' || quote_ident(tg.tgname) || ' ON ' || t || ' IS '
       || quote_literal(dsc.description)
FROM pg_trigger tg
JOIN pg_description dsc ON dsc.objoid = tg.oid AND dsc.classoid = 'pg_trigger'::regclass
WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal
"""

# Every column's own settings (toolkit.sql.attached: statistics target, storage,
# compression, options, comment, grants, OWNED BY of a serial sequence); identity comes
# with the CREATE TABLE, its position before the load.
_COLUMNS = f"""
SELECT x.step, x.stmt FROM pg_attribute a
CROSS JOIN LATERAL (SELECT quote_ident(a.attname) AS col) AS names
CROSS JOIN LATERAL ({_COLUMN}) AS x(step, stmt)
WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND x.step < 47
"""  # noqa: S608 (constant fragments only)

_SHAPE = """
'columns', (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
'constraints', coalesce((SELECT jsonb_agg(jsonb_build_object(
    'name', con.conname, 'type', con.contype,
    'columns', (SELECT jsonb_agg(ka.attname ORDER BY k.ord)
                FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute ka ON ka.attrelid = c.oid AND ka.attnum = k.attnum),
    'referent_schema', rn.nspname, 'referent_table', r.relname,
    'referent_columns', (SELECT jsonb_agg(ra.attname ORDER BY k.ord)
                FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.attnum),
    'ondelete', nullif(con.confdeltype, ' ')) ORDER BY con.conname)
    FROM pg_constraint con LEFT JOIN pg_class r ON r.oid = con.confrelid
    LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
    WHERE con.conrelid = c.oid AND con.contype <> 'n'), '[]'),
'indexes', coalesce((SELECT jsonb_agg(ic.relname ORDER BY ic.relname) FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid), '[]')
"""

_DEFINITION = f"""
(SELECT jsonb_build_object(
    'create', ({_CREATE}),
    'before_load', ({_BEFORE_LOAD}),
    'statements', coalesce((
        WITH stx AS (SELECT s.* FROM pg_statistic_ext s WHERE s.stxrelid = c.oid)
        SELECT jsonb_agg(stmt ORDER BY step, stmt)
        FROM ({_TABLE} UNION ALL {_STATISTICS} UNION ALL {_COLUMNS}) AS found(step, stmt)
    ), '[]'),
    {_SHAPE})
 FROM pg_class c CROSS JOIN LATERAL (
     SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t
     FROM pg_namespace n WHERE n.oid = c.relnamespace) AS names
 WHERE c.oid = {{rel}})
"""  # noqa: S608 (constant fragments only; the table goes in through {rel})


def junction_definition_json(junction: str, schema: str | None, rel: Sql) -> Sql:
    """A jsonb expression: the definition of ``junction`` as the catalog has it when it
    runs (see the module docstring); its triggers in the modes they had before the
    operation quieted them (``toolkit.sql.triggers``). ``rel``: the junction as a regclass
    expression (resolved under the session's ``search_path``)."""
    return sql.SQL(_DEFINITION).format(rel=rel, quiet=triggers.saved_modes(junction, schema))


def _detach_body(junction: str, schema: str | None) -> Sql:
    """PL/pgSQL keeping the sequences the junction's ``serial`` columns own (``OWNED BY
    NONE``), so that dropping the junction keeps them and their positions; the record
    re-attaches them."""
    return sql.SQL(
        "FOR lossless_seq IN SELECT d.objid::regclass FROM pg_depend d"
        " JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'"
        " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
        " AND d.refobjid = {rel} AND d.deptype = 'a' LOOP"
        " EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', lossless_seq); END LOOP;"
    ).format(rel=regclass(junction, schema))


def junction_entry(owner_table: str, column: str, alias: str = "s") -> Sql:
    """Condition on stash rows ``alias``: the junction record for ``owner_table.column``."""
    return entry(JUNCTION_KIND, owner_table, column, alias)


def record_junction(
    shape: JunctionShape, order_by: tuple[str, ...], *, keep_extra_links: bool
) -> Sql:
    """A ``DO`` block recording the junction's definition and its links (the first of
    every owner; with ``keep_extra_links`` every link of owners with several) and
    detaching its ``serial`` sequences, when the promote back is to give it back: with
    ``keep_extra_links``, or when the stash holds no record of ``shape``'s FK column (the
    junction was not made by a promote, so this collapse is not that promote's inverse).
    A collapse that is a promote's inverse, without ``keep_extra_links``, records nothing:
    the database goes back to what it was before that promote. The stash must exist."""
    return do_block(
        sql.SQL(
            "DECLARE\n  lossless_rel regclass := {rel};\n"
            "  lossless_path text := current_setting('search_path');\n"
            "  lossless_column boolean := EXISTS (SELECT FROM {stash} AS s WHERE {column_entry});\n"
            "  lossless_payload jsonb;\n  lossless_seq regclass;\nBEGIN\n"
            "  IF {keep} OR NOT lossless_column THEN\n"
            "    PERFORM set_config('search_path', '', true);\n"
            "    lossless_payload := {definition}"
            " || jsonb_build_object('column_recorded', lossless_column);\n"
            "    PERFORM set_config('search_path', lossless_path, true);\n"
            "    INSERT INTO {stash} (kind, table_name, column_name, row_key, payload)"
            " VALUES ({kind}, {table}, {column}, '[]'::jsonb, lossless_payload);\n"
            "    {links};\n    {detach}\n  END IF;\nEND"
        ).format(
            rel=regclass(shape.name, shape.schema),
            stash=stash_ref(shape.schema),
            column_entry=entry("column", shape.owner_table, shape.column),
            keep=sql.SQL("true" if keep_extra_links else "false"),
            definition=junction_definition_json(shape.name, shape.schema, sql.SQL("lossless_rel")),
            kind=literal(JUNCTION_KIND),
            table=literal(shape.owner_table),
            column=literal(shape.column),
            links=record_links(shape, order_by, keep_extra_links=keep_extra_links),
            detach=_detach_body(shape.name, shape.schema),
        )
    )


def record_links(shape: JunctionShape, order_by: tuple[str, ...], *, keep_extra_links: bool) -> Sql:
    """Stash the first link of every owner (``first``: its referent) and, with
    ``keep_extra_links``, every link of owners with several, each as the exact text of
    its junction row."""
    owner = sql.SQL("j.{}").format(ident(shape.owner_column))
    order = order_sql("j", order_by, shape.referent_column)
    extras = sql.SQL(" OR k.lossless_n > 1" if keep_extra_links else "")
    return sql.SQL(
        "INSERT INTO {stash} (kind, table_name, column_name, row_key, payload)"
        " SELECT 'link', {table}, {column}, jsonb_build_array(k.{owner_col}),"
        " jsonb_build_object('first', to_jsonb(k.lossless_first), 'text', k.lossless_row::text)"
        " FROM (SELECT j AS lossless_row, j.{owner_col},"
        " row_number() OVER (PARTITION BY {owner} ORDER BY {order}) AS lossless_rank,"
        " count(*) OVER (PARTITION BY {owner}) AS lossless_n,"
        " first_value(j.{referent}) OVER (PARTITION BY {owner} ORDER BY {order})"
        " AS lossless_first FROM {ref} AS j) AS k WHERE k.lossless_rank = 1{extras}"
    ).format(
        stash=stash_ref(shape.schema),
        table=literal(shape.owner_table),
        column=literal(shape.column),
        owner_col=ident(shape.owner_column),
        owner=owner,
        order=order,
        referent=ident(shape.referent_column),
        ref=shape.ref,
        extras=extras,
    )


def load_recorded_links(
    shape: JunctionShape, referent: ForeignKeySpec, row_filter: Sql | None = None
) -> Sql:
    """Re-insert, exactly (``row::text`` back into the row type of the re-created
    junction, identity values included), the recorded links of owners still pointing at
    the same first link; links whose referent has since been deleted go, as a cascade
    would. ``row_filter``: only owners ``t`` matching it."""
    return sql.SQL(
        "INSERT INTO {ref} OVERRIDING SYSTEM VALUE SELECT (x.v).* FROM {stash} AS s"
        " JOIN {owner_ref} AS t ON {kept}"
        " CROSS JOIN LATERAL (SELECT (s.payload ->> 'text')::{ref} AS v OFFSET 0) AS x"
        " WHERE EXISTS (SELECT FROM {referent} AS r WHERE r.{rkey} = (x.v).{rcol}){filter}"
    ).format(
        ref=shape.ref,
        stash=stash_ref(shape.schema),
        owner_ref=shape.owner_ref,
        kept=kept_link(shape, "t"),
        referent=qualified(referent.referent_table, referent.referent_schema),
        rkey=ident(referent.referent_columns[0]),
        rcol=ident(shape.referent_column),
        filter=sql.SQL("") if row_filter is None else sql.SQL(" AND {}").format(row_filter),
    )


def kept_link(shape: JunctionShape, alias: str) -> Sql:
    """Stash entries ``s`` holding recorded links of owner ``alias`` that are still
    current: the owner's column still holds the first link the collapse put there."""
    return sql.SQL(
        "{entry} AND s.row_key = {row_key} AND s.payload -> 'first' = to_jsonb({v})"
    ).format(
        entry=entry("link", shape.owner_table, shape.column),
        row_key=row_key_json(alias, (shape.owner_key,)),
        v=column_of(alias, shape.column),
    )


def recorded_junction(owner_table: str, column: str, *, schema: str | None) -> Sql:
    """The junction record for ``owner_table.column`` (online lookup; at most one row)."""
    return sql.SQL("SELECT s.payload FROM {} AS s WHERE {} LIMIT 1").format(
        stash_ref(schema), junction_entry(owner_table, column)
    )


def forget_junction(owner_table: str, column: str, *, schema: str | None) -> Sql:
    """Delete the junction record for ``owner_table.column``."""
    return sql.SQL("DELETE FROM {} AS s WHERE {}").format(
        stash_ref(schema), junction_entry(owner_table, column)
    )


def refuse_recorded_offline(owner_table: str, column: str, *, schema: str | None) -> Sql:
    """Offline guard of a promote: raise when the script runs if a collapse recorded the
    junction (the printed script makes the toolkit's junction, not that one)."""
    return do_block(
        sql.SQL(
            "BEGIN\n  IF {rel} IS NOT NULL THEN\n"
            "    IF EXISTS (SELECT FROM {stash} AS s WHERE {entry}) THEN\n"
            "      RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = {message};\n"
            "    END IF;\n  END IF;\nEND"
        ).format(
            rel=regclass(STASH_TABLE, schema),
            stash=stash_ref(schema),
            entry=junction_entry(owner_table, column),
            message=literal(
                f"refused: promote_fk_to_junction: the junction of {owner_table}.{column} was"
                " recorded by a collapse and this offline script would create the toolkit's"
                " junction instead of giving it back: run the promote online"
            ),
        )
    )


def junction_recorded_unless(owner_table: str, column: str, schema: str | None) -> Sql:
    """PL/pgSQL leaving a guard (``RETURN``) when a collapse without ``keep_extra_links``
    will record the junction: no record of ``owner_table.column`` in the stash when the
    script runs (see ``record_junction``)."""
    return sql.SQL(
        "  IF {rel} IS NULL THEN\n    RETURN;\n  END IF;\n"
        "  IF NOT EXISTS (SELECT FROM {stash} AS s WHERE {entry}) THEN\n    RETURN;\n  END IF;\n"
    ).format(
        rel=regclass(STASH_TABLE, schema),
        stash=stash_ref(schema),
        entry=entry("column", owner_table, column),
    )
