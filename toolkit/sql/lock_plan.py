"""Which table locks a list of statements takes, so that a revision can take them all first.

PostgreSQL takes a table's lock when a statement first touches it and keeps it until the
transaction ends. A revision that touches tables one after the other therefore holds some
locks while it waits for the next: with an application transaction that locks the same
tables in another order, that is a deadlock. Taking every lock the revision will need at
its start, in one global order and in the strongest mode needed, removes every later wait.

``needed_locks`` reads the statements (as the toolkit's operations print them) and returns
one ``(schema, table, mode)`` per existing table, strongest mode, sorted by (schema,
table). Modes follow PostgreSQL's documentation of each command:

- ``ALTER TABLE t ADD CONSTRAINT ... FOREIGN KEY ... REFERENCES r``: SHARE ROW EXCLUSIVE
  on ``t`` and ``r``; any other ``ALTER TABLE t``: ACCESS EXCLUSIVE on ``t``, and on the
  referenced table of each foreign key it drops (``DROP COLUMN``, ``DROP CONSTRAINT``: the
  key's triggers live there too);
- ``DROP TABLE t``: ACCESS EXCLUSIVE on ``t`` and on the tables its foreign keys reference;
- ``CREATE INDEX ... ON t``: SHARE; ``INSERT``/``UPDATE``/``DELETE``: ROW EXCLUSIVE;
  ``LOCK TABLE``: the mode it names; ``ANALYZE``: SHARE UPDATE EXCLUSIVE.

Tables the statements create are left out (nobody else can hold them), and so is the
toolkit's own ``lossless_stash`` (no application touches it; another run is kept out by
the migration lock).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from psycopg import sql

from toolkit.sql.checks import do_block
from toolkit.sql.idents import Sql, literal, qualified, render

#: PostgreSQL's table lock modes, weakest first (``LOCK TABLE ... IN <mode> MODE``).
LOCK_MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
STASH_TABLE = "lossless_stash"

_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_TABLE = rf"(?P<table>{_NAME}(?:\.{_NAME})?)"
_ALTER = re.compile(rf"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?{_TABLE}\s+(?P<rest>.*)$", re.S | re.I)
_FK = re.compile(rf"FOREIGN KEY\s*\([^)]*\)\s*REFERENCES\s+{_TABLE}", re.I)
_DROP_COLUMN = re.compile(rf"DROP COLUMN (?:IF EXISTS )?(?P<name>{_NAME})", re.I)
_DROP_CONSTRAINT = re.compile(rf"DROP CONSTRAINT (?:IF EXISTS )?(?P<name>{_NAME})", re.I)
_DROP_TABLE = re.compile(rf"^DROP TABLE (?:IF EXISTS )?{_TABLE}", re.I)
_CREATE_TABLE = re.compile(rf"^CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?{_TABLE}", re.I)
_CREATE_INDEX = re.compile(
    rf"^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?(?:{_NAME} )?ON (?:ONLY )?{_TABLE}", re.I
)
_DML = re.compile(rf"^(?:INSERT INTO|UPDATE|DELETE FROM) (?:ONLY )?{_TABLE}", re.I)
_LOCK = re.compile(r"^LOCK (?:TABLE )?(?P<tables>.*?) IN (?P<mode>[A-Z ]+?) MODE", re.S | re.I)
_ANALYZE = re.compile(rf"^ANALYZE (?:VERBOSE )?{_TABLE}", re.I)


@dataclass(frozen=True, order=True)
class NeededLock:
    """A table lock a revision needs: ``LOCK TABLE schema.table IN mode MODE``."""

    schema: str
    table: str
    mode: str


@dataclass(frozen=True)
class Drop:
    """Something a statement drops whose foreign keys lock their referenced tables."""

    schema: str
    table: str
    #: ``("column", name)``, ``("constraint", name)`` or ``("table", "")``.
    kind: str
    name: str


#: Given what is dropped, the (schema, table) its foreign keys reference (a catalog lookup).
Referents = Callable[[Drop], Sequence[tuple[str, str]]]


def needed_locks(
    statements: Iterable[str], *, schema: str, referents: Referents | None = None
) -> list[NeededLock]:
    """One lock per existing table ``statements`` touch: strongest mode, (schema, table) order.

    ``schema`` qualifies unqualified names (the search path's first schema); ``referents``
    finds the tables that dropped foreign keys reference (omitted: none are added).
    """
    created: set[tuple[str, str]] = set()
    wanted: list[NeededLock] = []
    for statement in statements:
        text = _strip_comments(statement).strip()
        found, drops, new = _locks_of(text, schema)
        created |= new
        wanted += found
        for drop in drops:
            wanted += [NeededLock(s, t, "ACCESS EXCLUSIVE") for s, t in (referents or _none)(drop)]
    strongest: dict[tuple[str, str], NeededLock] = {}
    for lock in wanted:
        key = (lock.schema, lock.table)
        # an unqualified name after a qualified CREATE TABLE of it (a recorded definition
        # is schema-qualified) is that new table
        is_new = key in created or (not lock.schema and lock.table in {t for _, t in created})
        if is_new or lock.table == STASH_TABLE:
            continue
        held = strongest.get(key)
        if held is None or LOCK_MODES.index(lock.mode) > LOCK_MODES.index(held.mode):
            strongest[key] = lock
    return [strongest[key] for key in sorted(strongest)]


def referenced_tables(statement: str) -> list[tuple[str | None, str]]:
    """The tables the ``FOREIGN KEY ... REFERENCES`` clauses of ``statement`` name, each
    ``(schema, table)``; schema None when the name is unqualified (the search path finds
    it, as it does for the statement)."""
    found = (_split(m["table"], "") for m in _FK.finditer(_strip_comments(statement)))
    return [(schema or None, table) for schema, table in found]


def _none(drop: Drop) -> Sequence[tuple[str, str]]:
    del drop
    return ()


def _locks_of(text: str, schema: str) -> tuple[list[NeededLock], list[Drop], set[tuple[str, str]]]:
    if match := _CREATE_TABLE.match(text):
        refs = [_split(m["table"], schema) for m in _FK.finditer(text)]
        return (
            [NeededLock(*r, "SHARE ROW EXCLUSIVE") for r in refs],
            [],
            {_split(match["table"], schema)},
        )
    if match := _ALTER.match(text):
        table = _split(match["table"], schema)
        rest = match["rest"]
        fks = [_split(m["table"], schema) for m in _FK.finditer(rest)]
        only_fk = bool(fks) and re.match(r"^ADD CONSTRAINT \S+ FOREIGN KEY", rest, re.I)
        mode = "SHARE ROW EXCLUSIVE" if only_fk else "ACCESS EXCLUSIVE"
        drops = [Drop(*table, "column", _unquote(m["name"])) for m in _DROP_COLUMN.finditer(rest)]
        drops += [
            Drop(*table, "constraint", _unquote(m["name"])) for m in _DROP_CONSTRAINT.finditer(rest)
        ]
        locks = [NeededLock(*table, mode), *(NeededLock(*r, "SHARE ROW EXCLUSIVE") for r in fks)]
        return locks, drops, set()
    if match := _DROP_TABLE.match(text):
        table = _split(match["table"], schema)
        return [NeededLock(*table, "ACCESS EXCLUSIVE")], [Drop(*table, "table", "")], set()
    for pattern, mode in (
        (_CREATE_INDEX, "SHARE"),
        (_DML, "ROW EXCLUSIVE"),
        (_ANALYZE, "SHARE UPDATE EXCLUSIVE"),
    ):
        if match := pattern.match(text):
            return [NeededLock(*_split(match["table"], schema), mode)], [], set()
    if match := _LOCK.match(text):
        mode = " ".join(match["mode"].upper().split())
        tables = [t.strip() for t in match["tables"].split(",")]
        return [NeededLock(*_split(t, schema), mode) for t in tables if t], [], set()
    return [], [], set()


def _split(name: str, schema: str) -> tuple[str, str]:
    parts = re.findall(_NAME, name)
    if len(parts) == 2:
        return _unquote(parts[0]), _unquote(parts[1])
    return schema, _unquote(parts[0])


def _unquote(name: str) -> str:
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _strip_comments(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))


def lock_statement(lock: NeededLock) -> Sql:
    """``LOCK TABLE schema.table IN <mode> MODE``."""
    if lock.mode not in LOCK_MODES:
        raise ValueError(f"not a table lock mode: {lock.mode!r}")
    return sql.SQL("LOCK TABLE {} IN {} MODE").format(
        qualified(lock.table, lock.schema), sql.SQL(lock.mode)
    )


#: The foreign keys a drop removes, and the tables they reference (one catalog query).
REFERENTS_SQL = """
SELECT rn.nspname, r.relname
FROM pg_constraint AS c
JOIN pg_class AS r ON r.oid = c.confrelid
JOIN pg_namespace AS rn ON rn.oid = r.relnamespace
WHERE c.contype = 'f' AND c.conrelid = to_regclass({table})
  AND ({kind} = 'table'
       OR ({kind} = 'constraint' AND c.conname = {name})
       OR ({kind} = 'column' AND EXISTS (
            SELECT FROM pg_attribute AS a
            WHERE a.attrelid = c.conrelid AND a.attname = {name} AND a.attnum = ANY(c.conkey))))
ORDER BY 1, 2
"""


def referents_query(drop: Drop) -> Sql:
    """The query behind ``Referents`` online (rows of (schema, table))."""
    return sql.SQL(REFERENTS_SQL).format(
        table=literal(render(qualified(drop.table, drop.schema))),
        kind=literal(drop.kind),
        name=literal(drop.name),
    )


#: Marks the prelude's block (error messages recognise a lock timeout of the prelude).
PRELUDE_MARK = "lossless lock prelude"
#: Attempts of the prelude inside the revision's transaction before its lock timeout is
#: raised (then ``--lock-retries`` may try the whole revision again).
PRELUDE_ATTEMPTS = 8

# Each attempt waits for each lock at most what is left of its budget: half of
# deadlock_timeout (at most lock_timeout, 0: no limit), an eighth of it on the first
# attempt, a quarter on the second, a half on the third (a cycle with an application
# transaction never resolves by waiting longer; a long application transaction needs the
# full budget). A failed attempt gives every lock back (its subtransaction is rolled back)
# and pauses a few jittered milliseconds, letting the queued application statements go.
_PRELUDE = """DECLARE
  -- {mark}: every table lock first, in one order, each attempt within half of deadlock_timeout
  kept text := current_setting('lock_timeout');
  budget interval := CASE WHEN kept::interval > interval '0'
    THEN least(kept::interval, current_setting('deadlock_timeout')::interval / 2)
    ELSE current_setting('deadlock_timeout')::interval / 2 END;
  deadline timestamptz;
  attempt int := 0;
BEGIN
  LOOP
    attempt := attempt + 1;
    deadline := clock_timestamp() + budget / 2 ^ greatest(0, 4 - attempt);
    BEGIN
{locks}
      EXIT;
    EXCEPTION WHEN lock_not_available THEN
      IF attempt >= {attempts} THEN
        RAISE;
      END IF;
      PERFORM pg_sleep(0.005 * attempt * (0.5 + random()));
    END;
  END LOOP;
  PERFORM set_config('lock_timeout', kept, true);
END"""

_LEFT = (
    "PERFORM set_config('lock_timeout', greatest(1, ceil(1000 * extract(epoch FROM"
    " deadline - clock_timestamp())))::bigint || 'ms', true)"
)


def _padded(lock: sql.SQL, pad: str, **parts: Sql) -> Sql:
    return sql.SQL(pad) + lock.format(left=sql.SQL(_LEFT), pad=sql.SQL(pad), **parts)


def prelude_block(locks: Sequence[tuple[str | None, str, str]], *, stash: str | None) -> Sql:
    """The lock prelude: ``LOCK TABLE schema.table IN mode MODE`` for each ``(schema, table,
    mode)`` in the order given, each under what is left of the attempt's budget, retried
    in the transaction (see ``_PRELUDE``). A lock on the stash table ``stash`` is taken
    only if that table exists."""
    lines = []
    for schema, table, mode in locks:
        if mode not in LOCK_MODES:
            raise ValueError(f"not a table lock mode: {mode!r}")
        name = qualified(table, schema)
        lock = sql.SQL("{left};\n{pad}LOCK TABLE {name} IN {mode} MODE;")
        if table != stash:
            lines.append(_padded(lock, "      ", name=name, mode=sql.SQL(mode)))
            continue
        exists = literal(render(name))
        inner = _padded(lock, "        ", name=name, mode=sql.SQL(mode))
        lines.append(
            sql.SQL("      IF to_regclass({}) IS NOT NULL THEN\n{}\n      END IF;").format(
                exists, inner
            )
        )
    body = sql.SQL(_PRELUDE).format(
        mark=sql.SQL(PRELUDE_MARK),
        locks=sql.SQL("\n").join(lines),
        attempts=sql.SQL(str(PRELUDE_ATTEMPTS)),
    )
    return do_block(body)


#: The relation locks this session holds, strongest per table (``pg_locks``: granted,
#: on tables and partitioned tables, other than ACCESS SHARE, which reads take).
HELD_LOCKS_SQL = """
SELECT n.nspname, c.relname,
       upper(regexp_replace(regexp_replace(l.mode, 'Lock$', ''), '([a-z])([A-Z])', '\\1 \\2', 'g'))
FROM pg_locks AS l
JOIN pg_class AS c ON c.oid = l.relation
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND c.relkind IN ('r', 'p') AND l.mode <> 'AccessShareLock'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2, 3
"""


def held_locks_query() -> Sql:
    """The query behind the "locks already held" warning (rows of schema, table, mode)."""
    return sql.SQL(HELD_LOCKS_SQL)
