"""Read a schema's structure from the system catalogs, one query per kind of object.

Everything is text PostgreSQL itself renders (``format_type``, ``pg_get_constraintdef``,
``pg_get_indexdef``...), so two snapshots of the same server compare exactly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, TextClause, text

from toolkit.verify.model import Column, Constraint, Definition, EnumType, SequenceSnapshot

_TABLES = text(
    """
    SELECT c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
    ORDER BY c.relname
    """
)

_COLUMNS = text(
    """
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid),
           CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
           CASE a.attgenerated WHEN 's' THEN 'stored' WHEN 'v' THEN 'virtual' END,
           CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
      AND a.attnum > 0 AND NOT a.attisdropped
    """
)

# NOT NULL constraints (contype 'n', PostgreSQL 18+) are left out: nullability is part of the
# column, which keeps snapshots of different server versions alike.
_CONSTRAINTS = text(
    """
    SELECT c.relname, con.conname,
           CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key'
                WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion'
                WHEN 't' THEN 'trigger' ELSE con.contype::text END,
           pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND con.contype <> 'n'
    ORDER BY c.relname, con.conname
    """
)

_INDEXES = text(
    """
    SELECT c.relname, ic.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
    ORDER BY c.relname, ic.relname
    """
)

_TRIGGERS = text(
    """
    SELECT c.relname, tg.tgname, pg_get_triggerdef(tg.oid)
    FROM pg_trigger tg
    JOIN pg_class c ON c.oid = tg.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND NOT tg.tgisinternal
    ORDER BY c.relname, tg.tgname
    """
)

_SEQUENCES = text(
    """
    SELECT s.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmin,
           q.seqmax, q.seqcycle,
           (SELECT t.relname || '.' || a.attname
              FROM pg_depend d
              JOIN pg_class t ON t.oid = d.refobjid
              JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             LIMIT 1),
           ps.last_value
    FROM pg_sequence q
    JOIN pg_class s ON s.oid = q.seqrelid
    JOIN pg_namespace n ON n.oid = s.relnamespace
    LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = s.relname
    WHERE n.nspname = :schema
    ORDER BY s.relname
    """
)

_ENUMS = text(
    """
    SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
    FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    JOIN pg_enum e ON e.enumtypid = t.oid
    WHERE n.nspname = :schema
    GROUP BY t.typname
    ORDER BY t.typname
    """
)

_VIEWS = text(
    """
    SELECT c.relname,
           CASE c.relkind WHEN 'm' THEN 'MATERIALIZED ' ELSE '' END || pg_get_viewdef(c.oid)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relkind IN ('v', 'm')
    ORDER BY c.relname
    """
)


@dataclass(frozen=True)
class TableStructure:
    """A table's catalog facts, before its data is fingerprinted."""

    name: str
    columns: frozenset[Column]
    constraints: tuple[Constraint, ...]
    indexes: tuple[Definition, ...]
    triggers: tuple[Definition, ...]


@dataclass(frozen=True)
class SchemaStructure:
    """Everything structural in one schema."""

    tables: tuple[TableStructure, ...]
    sequences: tuple[SequenceSnapshot, ...]
    enums: tuple[EnumType, ...]
    views: tuple[Definition, ...]


def read_structure(conn: Connection, schema: str) -> SchemaStructure:
    """Read the structure of every table, sequence, enum and view in ``schema``."""
    params = {"schema": schema}
    names = [r[0] for r in conn.execute(_TABLES, params)]
    columns: defaultdict[str, set[Column]] = defaultdict(set)
    for table, *values in conn.execute(_COLUMNS, params):
        columns[table].add(Column(*values))
    constraints: defaultdict[str, list[Constraint]] = defaultdict(list)
    for table, *values in conn.execute(_CONSTRAINTS, params):
        constraints[table].append(Constraint(*values))
    indexes = _definitions_by_table(conn, _INDEXES, schema)
    triggers = _definitions_by_table(conn, _TRIGGERS, schema)
    tables = tuple(
        TableStructure(
            name=name,
            columns=frozenset(columns[name]),
            constraints=tuple(constraints[name]),
            indexes=tuple(indexes[name]),
            triggers=tuple(triggers[name]),
        )
        for name in names
    )
    sequences = tuple(SequenceSnapshot(*row) for row in conn.execute(_SEQUENCES, params))
    enums = tuple(EnumType(name, tuple(labels)) for name, labels in conn.execute(_ENUMS, params))
    views = tuple(Definition(name, body) for name, body in conn.execute(_VIEWS, params))
    return SchemaStructure(tables=tables, sequences=sequences, enums=enums, views=views)


def _definitions_by_table(
    conn: Connection, query: TextClause, schema: str
) -> defaultdict[str, list[Definition]]:
    found: defaultdict[str, list[Definition]] = defaultdict(list)
    for table, name, definition in conn.execute(query, {"schema": schema}):
        found[table].append(Definition(name, definition))
    return found


_KEYS = text(
    """
    SELECT c.relname,
           coalesce((SELECT array_agg(a.attname ORDER BY k.ord)
                       FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum),
                    '{}')
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN LATERAL (
        SELECT x.conkey FROM pg_constraint x
        WHERE x.conrelid = c.oid AND x.contype IN ('p', 'u')
          AND NOT EXISTS (SELECT 1 FROM unnest(x.conkey) AS u(attnum)
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum
                          WHERE NOT a.attnotnull)
        ORDER BY x.contype = 'p' DESC, x.conname
        LIMIT 1
    ) AS con ON true
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
    ORDER BY c.relname
    """
)


def read_row_keys(conn: Connection, schema: str) -> dict[str, tuple[str, ...]]:
    """Every table of ``schema`` -> the columns that identify a row.

    The primary key, else the first unique constraint over NOT NULL columns, else ``()``.
    """
    return {name: tuple(key) for name, key in conn.execute(_KEYS, {"schema": schema})}
