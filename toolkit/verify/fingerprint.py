"""The full-catalog fingerprint: every catalog fact a refactor could lose, read in one query.

``catalog_entries(conn, schemas)`` returns one ``CatalogEntry`` per fact, as text PostgreSQL
renders itself, read with ``search_path`` pinned to ``pg_catalog`` so that every name in a
definition is schema-qualified and the text does not depend on the session. Each entry is a
*definition* (what the snapshot's typed model also holds: a column's type and default, a
constraint's ``pg_get_constraintdef``...) or a *detail* (what it did not: grants, comments,
statistics targets, storage, trigger ``ENABLE`` state, row-level security, inheritance,
partition bounds, sequence positions, column order). ``fingerprint`` adds one data entry per
table (row count and row-hash sum, ``FROM ONLY``), so two fingerprints compare the whole
state of a set of schemas with ``==`` and ``fingerprint_diff`` names what differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from psycopg import sql
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from toolkit.sql.idents import qualified
from toolkit.sql.run import execute
from toolkit.verify.row_hash import row_hash
from toolkit.verify.session import canonical_settings

Part = Literal["definition", "detail"]

#: ``(kind, part)`` of every entry the query returns.
KINDS: tuple[tuple[str, Part], ...] = (
    ("table", "detail"),
    ("column order", "detail"),
    ("column", "definition"),
    ("column", "detail"),
    ("constraint", "definition"),
    ("constraint", "detail"),
    ("index", "definition"),
    ("index", "detail"),
    ("trigger", "definition"),
    ("trigger", "detail"),
    ("rule", "definition"),
    ("policy", "definition"),
    ("statistics", "definition"),
    ("sequence", "definition"),
    ("sequence", "detail"),
    ("sequence position", "detail"),
    ("view", "definition"),
    ("enum", "definition"),
)


@dataclass(frozen=True, order=True)
class CatalogEntry:
    """One catalog fact: ``kind`` of object, where it lives, and its text.

    ``table`` is the table (or view, sequence, type) the object belongs to; ``name`` the
    object itself (equal to ``table`` for table-level facts).
    """

    kind: str
    part: Part
    schema: str
    table: str
    name: str
    text: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.kind, self.part, self.schema, self.table, self.name)

    def describe(self) -> str:
        where = self.table if self.name == self.table else f"{self.table}.{self.name}"
        return f"{self.kind} {self.schema}.{where}"


_ACL = "(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest({}) AS x)"
_COMMENT = (
    "(SELECT description FROM pg_description WHERE objoid = {} AND classoid = {} AND objsubid = {})"
)


def _acl(expr: str) -> str:
    return _ACL.format(expr)


def _comment(objoid: str, catalog: str, subid: str = "0") -> str:
    return _COMMENT.format(objoid, f"'{catalog}'::regclass", subid)


def _fields(*pairs: tuple[str, str]) -> str:
    """``concat_ws`` of ``label=value`` pairs; NULL values print as ``label=∅``."""
    parts = ", ".join(f"'{label}=' || coalesce(({expr})::text, '∅')" for label, expr in pairs)
    return f"concat_ws(' ', {parts})"


#: Some server builds keep an internal ``pg_attver`` option on every column: not the user's.
_USER_OPTIONS = (
    "nullif(array_to_string(ARRAY(SELECT o FROM unnest(a.attoptions) AS o"
    " WHERE o NOT LIKE 'pg\\_attver=%' ORDER BY o), ','), '')"
)

# The columns of extended statistics are a set (kept in attnum order): they are listed by
# name, so a column that moved to the end of its table does not change them.

_RELS = """
    SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

# Built from the constant fragments above only: no value enters the text.
_QUERY = f"""
WITH rels AS ({_RELS}),
cols AS (
    SELECT r.nspname, r.relname, r.relkind, a.* FROM rels r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
)
SELECT 'table', 'detail', r.nspname, r.relname, r.relname, {
    _fields(
        ("kind", "c.relkind"),
        ("persistence", "c.relpersistence"),
        ("owner", "c.relowner::regrole"),
        ("acl", _acl("c.relacl")),
        ("rls", "c.relrowsecurity"),
        ("force_rls", "c.relforcerowsecurity"),
        ("options", "array_to_string(c.reloptions, ',')"),
        ("replica_identity", "c.relreplident"),
        ("of_type", "nullif(c.reloftype, 0)::regtype"),
        (
            "inherits",
            "(SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno)"
            " FROM pg_inherits i WHERE i.inhrelid = c.oid)",
        ),
        ("partition_of", "CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END"),
        ("partition_key", "CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END"),
        ("comment", _comment("c.oid", "pg_class")),
    )
}
FROM rels r JOIN pg_class c ON c.oid = r.oid
UNION ALL
SELECT 'column order', 'detail', nspname, relname, relname,
       string_agg(quote_ident(attname), ', ' ORDER BY attnum)
FROM cols GROUP BY nspname, relname
UNION ALL
SELECT 'column', 'definition', a.nspname, a.relname, a.attname, {
    _fields(
        ("type", "format_type(a.atttypid, a.atttypmod)"),
        ("not_null", "a.attnotnull"),
        (
            "default",
            "CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END",
        ),
        ("identity", "nullif(a.attidentity, '')"),
        (
            "generated",
            "CASE WHEN a.attgenerated <> '' THEN a.attgenerated::text || ' '"
            " || pg_get_expr(d.adbin, d.adrelid) END",
        ),
        (
            "collation",
            "CASE WHEN a.attcollation <> 0 THEN"
            " (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)"
            " FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace"
            " WHERE co.oid = a.attcollation) END",
        ),
        ("dims", "nullif(a.attndims, 0)"),
    )
}
FROM cols a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
UNION ALL
SELECT 'column', 'detail', a.nspname, a.relname, a.attname, {
    _fields(
        ("acl", _acl("a.attacl")),
        ("statistics", "coalesce(a.attstattarget::int, -1)"),
        ("storage", "nullif(a.attstorage, t.typstorage)"),
        ("compression", "nullif(a.attcompression, '')"),
        ("options", _USER_OPTIONS),
        ("fdw_options", "array_to_string(a.attfdwoptions, ',')"),
        ("local", "a.attislocal"),
        ("inherited", "a.attinhcount"),
        ("comment", _comment("a.attrelid", "pg_class", "a.attnum")),
    )
}
FROM cols a JOIN pg_type t ON t.oid = a.atttypid
UNION ALL
SELECT 'constraint', 'definition', r.nspname, r.relname, con.conname,
       con.contype::text || ' ' || coalesce(pg_get_constraintdef(con.oid), '')
FROM rels r JOIN pg_constraint con ON con.conrelid = r.oid
UNION ALL
SELECT 'constraint', 'detail', r.nspname, r.relname, con.conname, {
    _fields(
        ("deferrable", "con.condeferrable"),
        ("deferred", "con.condeferred"),
        ("validated", "con.convalidated"),
        ("local", "con.conislocal"),
        ("inherited", "con.coninhcount"),
        ("no_inherit", "con.connoinherit"),
        ("index", "nullif(con.conindid, 0)::regclass"),
        ("comment", _comment("con.oid", "pg_constraint")),
    )
}
FROM rels r JOIN pg_constraint con ON con.conrelid = r.oid
UNION ALL
SELECT 'index', 'definition', r.nspname, r.relname, ic.relname, pg_get_indexdef(i.indexrelid)
FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid
UNION ALL
SELECT 'index', 'detail', r.nspname, r.relname, ic.relname, {
    _fields(
        ("clustered", "i.indisclustered"),
        ("replica_identity", "i.indisreplident"),
        ("valid", "i.indisvalid"),
        ("options", "array_to_string(ic.reloptions, ',')"),
        (
            "statistics",
            "(SELECT string_agg(coalesce(ia.attstattarget::int, -1)::text, ','"
            " ORDER BY ia.attnum) FROM pg_attribute ia WHERE ia.attrelid = ic.oid)",
        ),
        ("comment", _comment("ic.oid", "pg_class")),
    )
}
FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid
UNION ALL
SELECT 'trigger', 'definition', r.nspname, r.relname, tg.tgname, pg_get_triggerdef(tg.oid)
FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid AND NOT tg.tgisinternal
UNION ALL
SELECT 'trigger', 'detail', r.nspname, r.relname, tg.tgname, {
    _fields(("enabled", "tg.tgenabled"), ("comment", _comment("tg.oid", "pg_trigger")))
}
FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid AND NOT tg.tgisinternal
UNION ALL
SELECT 'rule', 'definition', r.nspname, r.relname, rw.rulename,
       pg_get_ruledef(rw.oid) || ' enabled=' || rw.ev_enabled::text
FROM rels r JOIN pg_rewrite rw ON rw.ev_class = r.oid AND rw.rulename <> '_RETURN'
UNION ALL
SELECT 'policy', 'definition', r.nspname, r.relname, p.polname, {
    _fields(
        ("command", "p.polcmd"),
        ("permissive", "p.polpermissive"),
        (
            "roles",
            "(SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END, ','"
            " ORDER BY 1) FROM unnest(p.polroles) AS x)",
        ),
        ("using", "pg_get_expr(p.polqual, p.polrelid)"),
        ("check", "pg_get_expr(p.polwithcheck, p.polrelid)"),
    )
}
FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
UNION ALL
SELECT 'statistics', 'definition', r.nspname, r.relname, s.stxname, {
    _fields(
        ("kinds", "array_to_string(s.stxkind, ',')"),
        (
            "columns",
            "(SELECT string_agg(quote_ident(sa.attname), ', ' ORDER BY sa.attname)"
            " FROM unnest(s.stxkeys) AS k(attnum) JOIN pg_attribute sa"
            " ON sa.attrelid = s.stxrelid AND sa.attnum = k.attnum)",
        ),
        ("expressions", "array_to_string(pg_get_statisticsobjdef_expressions(s.oid), ', ')"),
        ("statistics", "coalesce(s.stxstattarget::int, -1)"),
        ("comment", _comment("s.oid", "pg_statistic_ext")),
    )
}
FROM rels r JOIN pg_statistic_ext s ON s.stxrelid = r.oid
UNION ALL
SELECT 'sequence', 'definition', n.nspname, c.relname, c.relname, {
    _fields(
        ("type", "format_type(q.seqtypid, NULL)"),
        ("start", "q.seqstart"),
        ("increment", "q.seqincrement"),
        ("min", "q.seqmin"),
        ("max", "q.seqmax"),
        ("cycle", "q.seqcycle"),
        (
            "owned_by",
            "(SELECT d.deptype::text || ' ' || d.refobjid::regclass::text || '.'"
            " || quote_ident(a.attname) FROM pg_depend d JOIN pg_attribute a"
            " ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
            " WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
            " AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))",
        ),
    )
}
FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(:schemas)
UNION ALL
SELECT 'sequence', 'detail', n.nspname, c.relname, c.relname, {
    _fields(
        ("cache", "q.seqcache"),
        ("owner", "c.relowner::regrole"),
        ("acl", _acl("c.relacl")),
        ("comment", _comment("c.oid", "pg_class")),
    )
}
FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(:schemas)
UNION ALL
SELECT 'sequence position', 'detail', s.schemaname, s.sequencename, s.sequencename,
       coalesce(s.last_value::text, 'not called')
FROM pg_sequences s WHERE s.schemaname = ANY(:schemas)
UNION ALL
SELECT 'view', 'definition', r.nspname, r.relname, r.relname,
       r.relkind::text || ' ' || pg_get_viewdef(r.oid)
FROM rels r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT 'enum', 'definition', n.nspname, t.typname, t.typname,
       (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = t.oid)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND n.nspname = ANY(:schemas)
"""  # noqa: S608

_STATEMENT = text(_QUERY).bindparams(bindparam("schemas", type_=ARRAY(Text())))


@contextmanager
def qualified_names(conn: Connection) -> Iterator[None]:
    """Canonical settings, and ``search_path`` = ``pg_catalog``: every name prints qualified."""
    with canonical_settings(conn, extra={"search_path": "pg_catalog"}):
        yield


def catalog_entries(
    conn: Connection, schemas: Sequence[str] = ("public",)
) -> tuple[CatalogEntry, ...]:
    """Every catalog fact of the tables, views, sequences and enums of ``schemas``, sorted."""
    with qualified_names(conn):
        found = conn.execute(_STATEMENT, {"schemas": list(schemas)}).all()
    return tuple(sorted(CatalogEntry(*row) for row in found))


def data_entries(
    conn: Connection, schemas: Sequence[str] = ("public",)
) -> tuple[CatalogEntry, ...]:
    """One entry per table of ``schemas``: its own rows (``FROM ONLY``), count and hash sum."""
    entries = []
    with canonical_settings(conn):
        tables = conn.execute(
            text(
                "SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attname)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
                " AND NOT a.attisdropped"
                " WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'm')"
                " GROUP BY 1, 2 ORDER BY 1, 2"
            ).bindparams(bindparam("schemas", type_=ARRAY(Text()))),
            {"schemas": list(schemas)},
        ).all()
        for schema, table, columns in tables:
            query = sql.SQL("SELECT count(*), coalesce(sum({}), 0) FROM ONLY {} AS t").format(
                row_hash(columns, alias="t"), qualified(table, schema)
            )
            count, total = execute(conn, query).one()
            entries.append(
                CatalogEntry("data", "definition", schema, table, table, f"{count} rows {total}")
            )
    return tuple(entries)


@dataclass(frozen=True)
class Fingerprint:
    """Catalog and data of a set of schemas; equal fingerprints mean an identical state."""

    entries: tuple[CatalogEntry, ...]

    def by_key(self) -> dict[tuple[str, str, str, str, str], CatalogEntry]:
        return {e.key: e for e in self.entries}

    def without(self, *kinds: str) -> Fingerprint:
        """The same fingerprint with the entries of ``kinds`` left out."""
        return Fingerprint(tuple(e for e in self.entries if e.kind not in kinds))


def fingerprint(conn: Connection, schemas: Sequence[str] = ("public",)) -> Fingerprint:
    """The full catalog and data fingerprint of ``schemas``, computed in the database."""
    return Fingerprint(catalog_entries(conn, schemas) + data_entries(conn, schemas))


def fingerprint_diff(a: Fingerprint, b: Fingerprint) -> list[str]:
    """One line per entry missing, added or changed from ``a`` to ``b`` (empty: identical)."""
    before, after = a.by_key(), b.by_key()
    lines = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if new is None and old is not None:
            lines.append(f"{old.describe()} ({old.part}) missing: {old.text}")
        elif old is None and new is not None:
            lines.append(f"{new.describe()} ({new.part}) added: {new.text}")
        elif old is not None and new is not None and old.text != new.text:
            lines.append(f"{old.describe()} ({old.part}) changed: {old.text} -> {new.text}")
    return lines


def entries_of(entries: Sequence[CatalogEntry], **match: str) -> Mapping[str, str]:
    """``name -> text`` of the entries whose fields equal ``match`` (for assertions)."""
    return {
        e.name: e.text
        for e in entries
        if all(getattr(e, field) == value for field, value in match.items())
    }
