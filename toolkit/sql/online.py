"""The SQL of online mode (``toolkit.ops.online``): progress, key ranges, mirror triggers.

- **Progress** lives in the toolkit's table ``lossless_online`` (in the schema of the
  tables being changed; dropped when no run is under way): one row per operation, keyed by
  the column being moved, ``payload`` ``{"phase": ..., "last": {key...}, "rows": n}``: the
  phase reached and, while the backfill runs, the primary key of the last row copied. Each
  batch updates it in its own transaction, so a rerun after a crash continues after the
  last committed batch.
- **Key ranges**: a batch is the next ``size`` rows after ``last`` in primary-key order
  (or, for operations that opt in, the rows of a range of heap pages: ``page_range``),
  locked ``FOR NO KEY UPDATE`` (an application write to one of them waits a few
  milliseconds; foreign-key checks of other tables do not). Keys travel as a JSON object
  turned back into the table's own types by ``jsonb_populate_record``, so any primary key,
  composite or not, of any type, is compared in its own order (and by its index).
- **Mirror triggers**: one PL/pgSQL function and one row trigger per operation, named
  ``lossless_online_<table>_<column>``, that write each application change of the moving
  value into the new structure while the backfill runs; the contract drops both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.sql.idents import Sql, column_of, ident, idents, literal, qualified
from toolkit.sql.lookups import regclass
from toolkit.sql.stash import drop_if_empty

#: The toolkit's table of online runs under way (dropped when none is).
PROGRESS_TABLE = "lossless_online"
#: PostgreSQL truncates longer names.
_MAX_NAME = 63


def online_name(name: str, what: str) -> str:
    """``name`` for one of online mode's own objects (``what``: "trigger", "column"),
    refused before any change when PostgreSQL would truncate it."""
    if len(name.encode()) > _MAX_NAME:
        raise UsageError(
            f"online mode: the {what} name {name!r} is longer than PostgreSQL's {_MAX_NAME}"
            " bytes; run this operation without online mode"
        )
    return name


def mirror_name(table: str, column: str) -> str:
    """The name of an operation's mirror trigger and of its function."""
    return online_name(f"lossless_online_{table}_{column}", "trigger")


# -- progress ------------------------------------------------------------------------------


def _progress_ref(schema: str | None) -> Sql:
    return qualified(PROGRESS_TABLE, schema)


def _entry(table: str, column: str) -> Sql:
    return sql.SQL("p.table_name = {} AND p.column_name = {}").format(
        literal(table), literal(column)
    )


def ensure_progress(schema: str | None) -> Sql:
    """Create the progress table unless it exists (one row per operation under way)."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (table_name text NOT NULL, column_name text NOT NULL,"
        " payload jsonb NOT NULL, PRIMARY KEY (table_name, column_name))"
    ).format(_progress_ref(schema))


def drop_progress_if_empty(schema: str | None) -> Sql:
    """Drop the progress table once no online run is under way."""
    return drop_if_empty(PROGRESS_TABLE, schema)


def read_progress(table: str, column: str, *, schema: str | None) -> Sql:
    """The progress entry's payload (no row: no online run under way)."""
    return sql.SQL("SELECT p.payload FROM {} AS p WHERE {}").format(
        _progress_ref(schema), _entry(table, column)
    )


def start_progress(
    table: str, column: str, operation: str, direction: str | None, *, schema: str | None
) -> Sql:
    """Record that the expand phase of ``operation`` on ``table.column`` is done (the
    backfill starts), and which way the revisions ran (None: not known)."""
    return sql.SQL(
        "INSERT INTO {} (table_name, column_name, payload) VALUES ({}, {},"
        " jsonb_build_object('phase', 'backfill', 'rows', 0, 'operation', {}, 'direction', {}))"
    ).format(
        _progress_ref(schema),
        literal(table),
        literal(column),
        literal(operation),
        sql.Literal(direction),
    )


def progress_schemas() -> Sql:
    """The schemas holding a progress table (an online run is under way there)."""
    return sql.SQL(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = {} AND c.relkind = 'r' ORDER BY n.nspname"
    ).format(literal(PROGRESS_TABLE))


def progress_rows(schema: str) -> Sql:
    """The runs recorded in ``schema``'s progress table: ``(table, column, operation,
    phase, direction)``."""
    return sql.SQL(
        "SELECT p.table_name, p.column_name, p.payload ->> 'operation', p.payload ->> 'phase',"
        " p.payload ->> 'direction' FROM {} AS p ORDER BY 1, 2"
    ).format(_progress_ref(schema))


def set_phase(table: str, column: str, phase: str, *, schema: str | None, extra: str = "{}") -> Sql:
    """Record the phase ``table.column`` reached (and the JSON object ``extra``)."""
    return sql.SQL(
        "UPDATE {} AS p SET payload = p.payload || {}::jsonb || jsonb_build_object('phase', {})"
        " WHERE {}"
    ).format(_progress_ref(schema), literal(extra), literal(phase), _entry(table, column))


def advance(
    table: str, column: str, last: str, rows: int, tallies: str, *, schema: str | None
) -> Sql:
    """Record a committed batch: its last key (JSON text), the rows it covered, and what
    the batches counted so far (JSON text)."""
    return sql.SQL(
        "UPDATE {} AS p SET payload = p.payload || jsonb_build_object('last', {}::jsonb,"
        " 'rows', (p.payload ->> 'rows')::bigint + {}, 'tallies', {}::jsonb) WHERE {}"
    ).format(
        _progress_ref(schema),
        literal(last),
        sql.Literal(rows),
        literal(tallies),
        _entry(table, column),
    )


def forget_progress(table: str, column: str, *, schema: str | None) -> Sql:
    """Remove ``table.column``'s progress entry (the run is complete or aborted)."""
    return sql.SQL("DELETE FROM {} AS p WHERE {}").format(
        _progress_ref(schema), _entry(table, column)
    )


# -- key ranges ----------------------------------------------------------------------------


def _key_row(alias: str, keys: Sequence[str]) -> Sql:
    return sql.SQL("ROW({})").format(sql.SQL(", ").join(column_of(alias, k) for k in keys))


def _key_of(table: str, keys: Sequence[str], key_json: str, schema: str | None) -> Sql:
    """A key given as JSON text, as a row of the table's own key types.

    An expression, not a subquery: the planner folds it to the key's value when it
    estimates, so a batch's range is costed from the key's statistics (a few thousand
    rows, read by the primary key's index), not as a third of the table."""
    record = sql.SQL("(jsonb_populate_record(NULL::{}, {}::jsonb))").format(
        qualified(table, schema), literal(key_json)
    )
    return sql.SQL("ROW({})").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(record, ident(c)) for c in keys)
    )


def after_key(table: str, keys: Sequence[str], last: str | None, *, schema: str | None) -> Sql:
    """Condition on rows ``t``: after ``last`` (JSON text) in key order; None: every row."""
    if last is None:
        return sql.SQL("TRUE")
    return sql.SQL("{} > {}").format(_key_row("t", keys), _key_of(table, keys, last, schema))


def key_range(
    table: str, keys: Sequence[str], last: str | None, upto: str, *, schema: str | None
) -> Sql:
    """Condition on rows ``t``: after ``last`` and up to ``upto`` (both JSON text)."""
    return sql.SQL("{} AND {} <= {}").format(
        after_key(table, keys, last, schema=schema),
        _key_row("t", keys),
        _key_of(table, keys, upto, schema),
    )


def lock_next_batch(
    table: str, keys: Sequence[str], last: str | None, size: int, *, schema: str | None
) -> Sql:
    """Lock the next ``size`` rows after ``last``; one row: how many, and the last key
    as JSON text (NULL when no row is left)."""
    key_json = sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(sql.SQL("{}, {}").format(literal(k), column_of("b", k)) for k in keys)
    )
    order = sql.SQL(", ").join(column_of("t", k) for k in keys)
    return sql.SQL(
        "SELECT count(*), (array_agg({key_json} ORDER BY {b_order}))[1]::text FROM"
        " (SELECT {cols} FROM {ref} AS t WHERE {after} ORDER BY {order} LIMIT {size}"
        " FOR NO KEY UPDATE OF t) AS b"
    ).format(
        key_json=key_json,
        b_order=sql.SQL(", ").join(sql.SQL("{} DESC").format(column_of("b", k)) for k in keys),
        cols=sql.SQL(", ").join(column_of("t", k) for k in keys),
        ref=qualified(table, schema),
        after=after_key(table, keys, last, schema=schema),
        order=order,
        size=sql.Literal(size),
    )


# -- page ranges ---------------------------------------------------------------------------


def page_range(first: int, end: int) -> Sql:
    """Condition on rows ``t``: on heap pages ``first`` to ``end - 1`` (a TID range scan,
    PostgreSQL 14 and later, reads just those pages)."""
    return sql.SQL("t.ctid >= {}::tid AND t.ctid < {}::tid").format(
        literal(f"({first},0)"), literal(f"({end},0)")
    )


def lock_pages(table: str, first: int, end: int, *, schema: str | None) -> Sql:
    """Lock the rows on pages ``first`` to ``end - 1`` (``FOR NO KEY UPDATE``); one row:
    how many. A row updated meanwhile is locked in its newest version, wherever it is."""
    return sql.SQL(
        "SELECT count(*) FROM (SELECT FROM {} AS t WHERE {} FOR NO KEY UPDATE OF t) AS b"
    ).format(qualified(table, schema), page_range(first, end))


def relation_pages(table: str, *, schema: str | None) -> Sql:
    """One row: the table's size in pages, its file node (a rewrite, such as ``VACUUM
    FULL``, changes it and moves every row), and whether the server scans TID ranges
    (PostgreSQL 14 and later)."""
    return sql.SQL(
        "SELECT pg_relation_size({rel}) / current_setting('block_size')::bigint,"
        " pg_relation_filenode({rel}), current_setting('server_version_num')::int >= 140000"
    ).format(rel=regclass(table, schema))


def analyze(table: str, *, schema: str | None) -> Sql:
    """Fresh planner statistics of a table the backfill filled or rewrote (SHARE UPDATE
    EXCLUSIVE: writes go on), so that the validations and measures that read it whole are
    planned from its real size, not from an empty table's."""
    return sql.SQL("ANALYZE {}").format(qualified(table, schema))


# -- transactions --------------------------------------------------------------------------


def local_lock_timeout(milliseconds: int) -> Sql:
    """``lock_timeout`` for the rest of the transaction."""
    return sql.SQL("SET LOCAL lock_timeout = {}").format(literal(f"{milliseconds}ms"))


# -- mirror triggers -----------------------------------------------------------------------


def create_mirror(
    table: str,
    column: str,
    *,
    schema: str | None,
    timing: str,
    events: Sequence[str],
    columns: Sequence[str],
    body: Sql,
    when: Sql | None = None,
) -> list[Sql]:
    """The function (``body`` is its PL/pgSQL between ``BEGIN`` and ``END``) and the row
    trigger firing it ``timing`` (``BEFORE``/``AFTER``) on ``events`` (``INSERT``,
    ``UPDATE`` of ``columns``, of any column when there are none, ``DELETE``); ``when``:
    the trigger's ``WHEN`` condition (checked without calling the function)."""
    name = mirror_name(table, column)
    parts = [
        sql.SQL("UPDATE OF {}").format(idents(columns))
        if event == "UPDATE" and columns
        else sql.SQL(event)
        for event in events
    ]
    return [
        sql.SQL(
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $lossless_online$\n"
            "BEGIN\n{body}\nEND\n$lossless_online$"
        ).format(fn=qualified(name, schema), body=body),
        sql.SQL(
            "CREATE TRIGGER {name} {timing} {events} ON {ref} FOR EACH ROW{when}"
            " EXECUTE FUNCTION {fn}()"
        ).format(
            when=sql.SQL("") if when is None else sql.SQL(" WHEN ({})").format(when),
            name=ident(name),
            timing=sql.SQL(timing),
            events=sql.SQL(" OR ").join(parts),
            ref=qualified(table, schema),
            fn=qualified(name, schema),
        ),
    ]


def drop_mirror(table: str, column: str, *, schema: str | None) -> list[Sql]:
    """Drop the mirror trigger and its function (no-ops when already gone)."""
    name = mirror_name(table, column)
    return [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(ident(name), qualified(table, schema)),
        sql.SQL("DROP FUNCTION IF EXISTS {}()").format(qualified(name, schema)),
    ]


def mirror_exists(table: str, column: str, *, schema: str | None) -> Sql:
    """One boolean: whether the mirror trigger is on ``table``."""
    return sql.SQL(
        "SELECT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = {} AND tgname = {})"
    ).format(regclass(table, schema), literal(mirror_name(table, column)))


def user_triggers(table: str, *, schema: str | None) -> Sql:
    """The enabled user triggers of ``table`` other than the toolkit's mirrors (names)."""
    return sql.SQL(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = {} AND NOT tgisinternal"
        " AND tgenabled <> 'D' AND tgname NOT LIKE 'lossless\\_online\\_%' ORDER BY tgname"
    ).format(regclass(table, schema))


# -- constraints without long locks -------------------------------------------------------


def constraint_state(table: str, name: str, *, schema: str | None) -> Sql:
    """One row ``(exists, validated)`` for the constraint ``name`` of ``table``."""
    return sql.SQL(
        "SELECT count(*) > 0, coalesce(bool_and(convalidated), false) FROM pg_constraint"
        " WHERE conrelid = {} AND conname = {}"
    ).format(regclass(table, schema), literal(name))


def not_valid(statement: Sql) -> Sql:
    """An ``ADD CONSTRAINT`` statement (foreign key or check) marked ``NOT VALID``."""
    return sql.SQL("{} NOT VALID").format(statement)


def validate(table: str, name: str, *, schema: str | None) -> Sql:
    """``VALIDATE CONSTRAINT``: a scan under SHARE UPDATE EXCLUSIVE (writes go on)."""
    return sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
        qualified(table, schema), ident(name)
    )


def not_null_check_name(table: str, column: str) -> str:
    """The name of the ``CHECK (column IS NOT NULL)`` online mode validates before
    ``SET NOT NULL`` (a digest when the readable name would be too long)."""
    name = f"lossless_nn_{table}_{column}"
    if len(name.encode()) <= _MAX_NAME:
        return name
    return f"lossless_nn_{hashlib.sha256(f'{table}.{column}'.encode()).hexdigest()[:24]}"


def add_not_null_check(table: str, column: str, *, schema: str | None) -> Sql:
    """``ADD CONSTRAINT`` of the check that proves ``column`` holds no NULL."""
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL)").format(
        qualified(table, schema), ident(not_null_check_name(table, column)), ident(column)
    )


def drop_constraint_if_exists(table: str, name: str, *, schema: str | None) -> Sql:
    """Drop constraint ``name`` of ``table`` when it is there."""
    return sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
        qualified(table, schema), ident(name)
    )


# -- indexes without long locks ------------------------------------------------------------

_INDEXDEF = re.compile(r"^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY )", re.IGNORECASE)


def concurrently(indexdef: str) -> Sql:
    """A recorded ``pg_get_indexdef`` text (``CREATE [UNIQUE] INDEX name ON ...``) as
    ``CREATE [UNIQUE] INDEX CONCURRENTLY name ON ...``. An index of a partitioned table
    (``ON ONLY``) cannot be built concurrently: refused (before any change)."""
    if not _INDEXDEF.match(indexdef):
        raise UsageError(f"online mode: not an index definition: {indexdef!r}")
    if re.search(r"\sON ONLY\s", indexdef):
        raise UsageError(
            f"online mode: {indexdef!r} is an index of a partitioned table, which PostgreSQL"
            " cannot build concurrently; run this operation without online mode"
        )
    return sql.SQL(
        _INDEXDEF.sub(lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY ", indexdef)
    )


def index_state(name: str, *, schema: str | None) -> Sql:
    """One row ``(exists, valid)`` for index ``name`` (a killed concurrent build leaves an
    invalid one behind)."""
    return sql.SQL(
        "SELECT count(*) > 0, coalesce(bool_and(i.indisvalid), false) FROM pg_index i"
        " WHERE i.indexrelid = {}"
    ).format(regclass(name, schema))


def drop_index_concurrently(name: str, *, schema: str | None) -> Sql:
    """Drop an index without blocking writes (an invalid leftover of a killed build)."""
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(qualified(name, schema))


def drop_index_if_exists(name: str, *, schema: str | None) -> Sql:
    """Drop index ``name`` when it is there (an abort, under the contract's locks)."""
    return sql.SQL("DROP INDEX IF EXISTS {}").format(qualified(name, schema))
