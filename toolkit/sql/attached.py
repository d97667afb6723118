"""Everything attached to a column, captured as the statements that re-create it.

An operation that drops a column records, next to its definition, ``attached_json``: a
jsonb object read from the catalog when the script runs (plain SQL, so offline scripts
record it too):

- ``collation``: the column's collation when it is not its type's default
  (``pg_catalog."C"``), to be written into the re-added column's type;
- ``statements``: in the order they must run once the column is back and filled:
  UNIQUE / CHECK / EXCLUDE constraints that include it (by name, with every option
  ``pg_get_constraintdef`` prints: ``DEFERRABLE``, ``NOT VALID``, ``WITH (...)``), indexes
  on it (plain, partial, expression, multi-column; by ``pg_get_indexdef``), ``CLUSTER ON``
  and ``REPLICA IDENTITY USING INDEX``, extended statistics, then the column's own
  ``SET STATISTICS``, ``SET STORAGE``, ``SET COMPRESSION``, ``SET (options)``, comment and
  column-level grants, and the comments and statistics targets of the objects above;
  last its sequence: ``OWNED BY`` again for a ``serial`` one (``detach_owned_sequences``
  kept it, with its position, while the column was gone), or for an identity column
  ``ADD GENERATED ... AS IDENTITY`` with the sequence's name and options, then ``setval``
  to the position it had.

Every name in a statement is schema-qualified whatever the ``search_path``: tables through
``quote_ident(schema) || '.' || quote_ident(name)``, definitions through PostgreSQL's own
``pg_get_*def``, which qualify what the path does not show; the operations record under an
empty ``search_path`` (``toolkit.sql.stash.record_column``), so that is every name.
Indexes that back a constraint come back with the constraint. Foreign keys are not here:
the operations record them with the column (``toolkit.sql.lookups.column_definition_json``).

``replay_attached(record)`` is the offline replay: a ``DO`` block running the recorded
statements when the script runs. Online, the operation reads the record and runs the
statements itself.
"""

from __future__ import annotations

from psycopg import sql

from toolkit.sql.checks import do_block
from toolkit.sql.idents import Sql, literal
from toolkit.sql.lookups import regclass

# Fragments below refer to: a (the column's pg_attribute row), t (its table's qualified
# name as text), col (the quoted column name).
_CONSTRAINTS = """
SELECT 10, 'ALTER TABLE ' || t || ' ADD CONSTRAINT ' || quote_ident(con.conname) || ' '
       || pg_get_constraintdef(con.oid)
FROM pg_constraint con
WHERE con.conrelid = a.attrelid AND con.contype IN ('u', 'c', 'x')
  AND a.attnum = ANY (con.conkey)
UNION ALL
SELECT 11, 'COMMENT ON CONSTRAINT ' || quote_ident(con.conname) || ' ON ' || t || ' IS '
       || quote_literal(dsc.description)
FROM pg_constraint con
JOIN pg_description dsc ON dsc.objoid = con.oid AND dsc.classoid = 'pg_constraint'::regclass
WHERE con.conrelid = a.attrelid AND con.contype IN ('u', 'c', 'x')
  AND a.attnum = ANY (con.conkey)
"""

# Indexes depending on the column (key, expression or predicate), not backing a constraint.
_INDEXES = """
SELECT 20, pg_get_indexdef(i.indexrelid) FROM idx i
UNION ALL
SELECT 21, 'ALTER TABLE ' || t || ' CLUSTER ON ' || quote_ident(ic.relname)
FROM idx i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indisclustered
UNION ALL
SELECT 21, 'ALTER TABLE ' || t || ' REPLICA IDENTITY USING INDEX ' || quote_ident(ic.relname)
FROM idx i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indisreplident
UNION ALL
SELECT 22, 'ALTER INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname)
       || ' ALTER COLUMN ' || ia.attnum || ' SET STATISTICS ' || ia.attstattarget
FROM idx i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_attribute ia ON ia.attrelid = ic.oid AND ia.attstattarget >= 0
UNION ALL
SELECT 22, 'COMMENT ON INDEX ' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname)
       || ' IS ' || quote_literal(dsc.description)
FROM idx i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_description dsc ON dsc.objoid = ic.oid AND dsc.classoid = 'pg_class'::regclass
"""

_STATISTICS = """
SELECT 30, 'CREATE STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(s.stxname)
       || CASE WHEN s.stxkind = ARRAY['e']::"char"[] THEN '' ELSE ' (' || array_to_string(ARRAY(
              SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies'
                            ELSE 'mcv' END
              FROM unnest(s.stxkind) AS k WHERE k <> 'e' ORDER BY k), ', ') || ')' END
       || ' ON ' || pg_get_statisticsobjdef_columns(s.oid) || ' FROM ' || t
FROM stx s JOIN pg_namespace n ON n.oid = s.stxnamespace
UNION ALL
SELECT 31, 'ALTER STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(s.stxname)
       || ' SET STATISTICS ' || s.stxstattarget
FROM stx s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxstattarget >= 0
UNION ALL
SELECT 31, 'COMMENT ON STATISTICS ' || quote_ident(n.nspname) || '.'
       || quote_ident(s.stxname) || ' IS ' || quote_literal(dsc.description)
FROM stx s JOIN pg_namespace n ON n.oid = s.stxnamespace
JOIN pg_description dsc ON dsc.objoid = s.oid
 AND dsc.classoid = 'pg_statistic_ext'::regclass
"""

# The column's own settings. attstattarget is NULL (PostgreSQL 17+) or -1 by default.
_COLUMN = """
SELECT 40, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET STATISTICS '
       || a.attstattarget
WHERE a.attstattarget >= 0
UNION ALL
SELECT 41, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET STORAGE '
       || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
               WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END
FROM pg_type ty WHERE ty.oid = a.atttypid AND a.attstorage <> ty.typstorage
UNION ALL
SELECT 42, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET COMPRESSION '
       || CASE a.attcompression WHEN 'p' THEN 'pglz' ELSE 'lz4' END
WHERE a.attcompression <> ''
UNION ALL
SELECT 43, 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' SET (' || o || ')'
FROM unnest(a.attoptions) AS o WHERE o NOT LIKE 'pg\\_attver=%'
UNION ALL
SELECT 44, 'COMMENT ON COLUMN ' || t || '.' || col || ' IS ' || quote_literal(dsc.description)
FROM pg_description dsc
WHERE dsc.objoid = a.attrelid AND dsc.classoid = 'pg_class'::regclass
  AND dsc.objsubid = a.attnum
UNION ALL
SELECT 45, 'GRANT ' || g.privilege_type || ' (' || col || ') ON ' || t || ' TO '
       || CASE g.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
       || CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
FROM aclexplode(a.attacl) AS g LEFT JOIN pg_roles r ON r.oid = g.grantee
UNION ALL
SELECT 46, 'ALTER SEQUENCE ' || quote_ident(sn.nspname) || '.' || quote_ident(sc.relname)
       || ' OWNED BY ' || t || '.' || col
FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'a'
UNION ALL
SELECT 47 + g.n, CASE g.n
    WHEN 0 THEN 'ALTER TABLE ' || t || ' ALTER COLUMN ' || col || ' ADD GENERATED '
        || CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END
        || ' AS IDENTITY (SEQUENCE NAME ' || quote_ident(sn.nspname) || '.'
        || quote_ident(sc.relname) || ' START WITH ' || q.seqstart || ' INCREMENT BY '
        || q.seqincrement || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' || q.seqmax
        || ' CACHE ' || q.seqcache || CASE WHEN q.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END
        || ')'
    ELSE 'SELECT setval(' || quote_literal(quote_ident(sn.nspname) || '.'
        || quote_ident(sc.relname)) || ', ' || pg_sequence_last_value(sc.oid) || ')' END
FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
JOIN pg_sequence q ON q.seqrelid = sc.oid
CROSS JOIN (VALUES (0), (1)) AS g(n)
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
  AND (g.n = 0 OR pg_sequence_last_value(sc.oid) IS NOT NULL)
"""

_ATTACHED = f"""
(SELECT jsonb_build_object(
    'collation', CASE WHEN a.attcollation <> ty.typcollation THEN
        (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
           FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
          WHERE co.oid = a.attcollation) END,
    'statements', coalesce((
        WITH idx AS (
            SELECT i.* FROM pg_index i
            WHERE i.indrelid = a.attrelid
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                              AND k.conrelid = a.attrelid AND k.contype IN ('p', 'u', 'x'))
              AND EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                            AND d.refclassid = 'pg_class'::regclass
                            AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum)
        ),
        stx AS (
            SELECT s.* FROM pg_statistic_ext s
            WHERE s.stxrelid = a.attrelid AND EXISTS (
                SELECT 1 FROM pg_depend d
                WHERE d.classid = 'pg_statistic_ext'::regclass AND d.objid = s.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid
                  AND d.refobjsubid = a.attnum)
        )
        SELECT jsonb_agg(stmt ORDER BY step, stmt) FROM (
            {_CONSTRAINTS} UNION ALL {_INDEXES} UNION ALL {_STATISTICS} UNION ALL {_COLUMN}
        ) AS found(step, stmt)
    ), '[]'::jsonb))
 FROM pg_attribute a
 JOIN pg_type ty ON ty.oid = a.atttypid
 CROSS JOIN LATERAL (
     SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t,
            quote_ident(a.attname) AS col
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.attrelid
 ) AS names
 WHERE a.attrelid = {{rel}} AND a.attname = {{name}} AND a.attnum > 0 AND NOT a.attisdropped)
"""  # noqa: S608 (constant fragments only; names go in through {rel} and {name})


def detach_owned_sequences(table: str, column: str, schema: str | None = None) -> Sql:
    """Keep the sequences a ``serial`` column owns (``OWNED BY NONE``) so that dropping the
    column does not drop them: their position survives, the record re-attaches them."""
    return do_block(
        sql.SQL(
            "DECLARE s record; BEGIN"
            " FOR s IN SELECT d.objid::regclass AS seq FROM pg_depend d"
            " JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'"
            " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
            " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
            " AND d.refobjid = {rel} AND a.attname = {name} AND d.deptype = 'a' LOOP"
            " EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', s.seq); END LOOP; END"
        ).format(rel=regclass(table, schema), name=literal(column))
    )


def attached_json(
    table: str, column: str, schema: str | None = None, *, rel: Sql | None = None
) -> Sql:
    """A jsonb expression: ``{"collation": ..., "statements": [...]}`` for ``table.column``
    as the catalog has it when the statement runs (see the module docstring). ``rel``:
    the table as a regclass expression, if not ``to_regclass`` of ``table``."""
    return sql.SQL(_ATTACHED).format(rel=rel or regclass(table, schema), name=literal(column))


def capture_attached(table: str, column: str, schema: str | None = None) -> Sql:
    """``SELECT`` of ``attached_json`` (one row, one jsonb value; NULL if no such column)."""
    return sql.SQL("SELECT {}").format(attached_json(table, column, schema))


def replay_attached(record: Sql) -> Sql:
    """A ``DO`` block running the statements of ``record`` (a jsonb expression holding an
    ``attached_json`` value), in order, when the script runs."""
    return do_block(
        sql.SQL(
            "DECLARE s text; BEGIN"
            " FOR s IN SELECT jsonb_array_elements_text(({record})->'statements') LOOP"
            " EXECUTE s; END LOOP; END"
        ).format(record=record)
    )


def statements_of(attached: object) -> list[str]:
    """The statements of an ``attached_json`` value read back in Python (online)."""
    if not isinstance(attached, dict):
        return []
    found = attached.get("statements") or []
    return [str(s) for s in found]


def collation_of(attached: object) -> str | None:
    """The recorded non-default collation (``pg_catalog."C"``), if any."""
    if not isinstance(attached, dict):
        return None
    value = attached.get("collation")
    return str(value) if value else None
