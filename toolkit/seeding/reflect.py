"""What the seeder needs to know about a schema, read from the catalogs.

Per table: columns (base type after domains, modifiers, NOT NULL, whether the database
fills the column itself), unique column sets, foreign keys and check constraints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Connection, text

from toolkit.sql.idents import qualified
from toolkit.sql.run import execute

_COLUMNS = text(
    """
    SELECT c.relname, a.attname, a.attnum,
           bt.typname, bt.typtype, bt.typcategory,
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
           a.attnotnull,
           a.attidentity <> '' OR a.attgenerated <> ''
             OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false),
           bn.nspname, et.typname, t.typtype = 'd'
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    JOIN pg_namespace bn ON bn.oid = bt.typnamespace
    LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname, a.attnum
    """
)

_CONSTRAINTS = text(
    """
    SELECT c.relname, con.conname, con.contype,
           ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(n, o)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
                 ORDER BY k.o),
           rc.relname, rn.nspname,
           ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(n, o)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                 ORDER BY k.o),
           CASE WHEN con.contype = 'c' THEN pg_get_expr(con.conbin, con.conrelid) END
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class rc ON rc.oid = con.confrelid
    LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE n.nspname = :schema AND con.contype IN ('p', 'u', 'f', 'c')
    ORDER BY c.relname, con.conname
    """
)

# Unique indexes that are not constraints (e.g. created with CREATE UNIQUE INDEX), with the
# columns they read: keys, and those an expression or a predicate uses (``lower(name)``).
_UNIQUE_INDEXES = text(
    """
    SELECT c.relname,
           ARRAY(SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = i.indrelid AND a.attnum > 0
                   AND (a.attnum = ANY (i.indkey::int2[])
                        OR EXISTS (SELECT FROM pg_depend d
                                   WHERE d.classid = 'pg_class'::regclass
                                     AND d.objid = i.indexrelid
                                     AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum))
                 ORDER BY a.attnum)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND i.indisunique
      AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid)
    """
)


@dataclass(frozen=True)
class ColumnInfo:
    """A column as the seeder sees it (``type_name``: the base type's ``typname``)."""

    name: str
    type_name: str
    type_kind: str
    category: str
    typmod: int
    not_null: bool
    generated_by_db: bool
    type_schema: str
    element_type: str | None = None
    is_domain: bool = False


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of the table reference ``ref_columns`` of ``ref_table``."""

    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class CheckConstraint:
    """A check constraint: the columns it reads and its expression."""

    name: str
    columns: tuple[str, ...]
    expression: str


@dataclass(frozen=True)
class TableInfo:
    """Everything the seeder needs about one table."""

    name: str
    columns: tuple[ColumnInfo, ...]
    unique_sets: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[CheckConstraint, ...] = ()
    key: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnInfo:
        """The column called ``name`` (``KeyError`` if none)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


def reflect_tables(conn: Connection, schema: str) -> dict[str, TableInfo]:
    """Every table of ``schema`` (partitions left out: rows go through their parent)."""
    params = {"schema": schema}
    columns: defaultdict[str, list[ColumnInfo]] = defaultdict(list)
    for row in conn.execute(_COLUMNS, params):
        table, name, _attnum, typname, typtype, category, typmod, not_null, by_db = row[:9]
        type_schema, element, is_domain = row[9:]
        columns[table].append(
            ColumnInfo(
                name=name,
                type_name=typname,
                type_kind=typtype,
                category=category,
                typmod=int(typmod),
                not_null=bool(not_null),
                generated_by_db=bool(by_db),
                type_schema=type_schema,
                element_type=element,
                is_domain=bool(is_domain),
            )
        )
    uniques: defaultdict[str, list[tuple[str, ...]]] = defaultdict(list)
    keys: dict[str, tuple[str, ...]] = {}
    fks: defaultdict[str, list[ForeignKey]] = defaultdict(list)
    checks: defaultdict[str, list[CheckConstraint]] = defaultdict(list)
    for table, name, kind, cols, ref_table, ref_schema, ref_cols, expr in conn.execute(
        _CONSTRAINTS, params
    ):
        if kind in ("p", "u"):
            uniques[table].append(tuple(cols))
            if kind == "p":
                keys[table] = tuple(cols)
        elif kind == "f":
            fks[table].append(ForeignKey(name, tuple(cols), ref_schema, ref_table, tuple(ref_cols)))
        elif expr is not None:
            checks[table].append(CheckConstraint(name, tuple(cols), expr))
    for table, cols in conn.execute(_UNIQUE_INDEXES, params):
        if cols:
            uniques[table].append(tuple(cols))
    return {
        table: TableInfo(
            name=table,
            columns=tuple(cols),
            unique_sets=tuple(uniques[table]),
            foreign_keys=tuple(fks[table]),
            checks=tuple(checks[table]),
            key=keys.get(table, ()),
        )
        for table, cols in columns.items()
    }


def table_names(conn: Connection, schema: str = "public") -> list[str]:
    """The tables of ``schema`` (partitions left out), sorted."""
    query = text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " ORDER BY 1"
    )
    return list(conn.execute(query, {"schema": schema}).scalars())


def empty_tables(conn: Connection, names: Iterable[str], schema: str = "public") -> list[str]:
    """Those of ``names`` that hold no row."""
    return [
        name
        for name in sorted(names)
        if not execute(
            conn, sql.SQL("SELECT EXISTS (SELECT FROM {})").format(qualified(name, schema))
        ).scalar_one()
    ]
