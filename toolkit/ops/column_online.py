"""A re-created column's constraints and attached objects, online (``toolkit.ops.online``).

A plain run adds everything ``ColumnPlan.finish_steps`` lists in its one transaction. Online
mode sorts the same statements by the lock they need, so that none holds a long one:

- foreign keys and CHECK constraints: ``constraints`` (added ``NOT VALID``, then validated
  by a scan that lets writes go on); one recorded ``NOT VALID`` stays so (the contract adds
  it as recorded: catalog only);
- indexes, and the indexes of UNIQUE constraints: ``indexes`` (``CREATE INDEX
  CONCURRENTLY``); the contract attaches each UNIQUE constraint to its index
  (``ADD CONSTRAINT ... UNIQUE USING INDEX``);
- NOT NULL: ``not_null`` (a validated check, then ``SET NOT NULL`` without a scan);
- the rest (comments, grants, statistics, storage and other settings, ``CLUSTER ON``, the
  default, the sequence a ``serial`` column owns): the contract, catalog changes only.

What cannot be had without a long lock is refused before any change: EXCLUDE
constraints (no concurrent build), identity columns and ``REPLICA IDENTITY`` on the
column (both need NOT NULL, which comes last).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops.columns import ColumnPlan
from toolkit.ops.steps import ConcurrentIndex, NotNull, Run, Step
from toolkit.sql import ddl
from toolkit.sql.idents import Sql
from toolkit.sql.online import concurrently

_IDENT = r'(?:"(?:[^"]|"")*"|[^\s"]+)'
_CONSTRAINT = re.compile(
    rf"^ALTER TABLE (?P<table>.+?) ADD CONSTRAINT (?P<name>{_IDENT}) (?P<d>.*)$"
)
_INDEX = re.compile(rf"^CREATE (?:UNIQUE )?INDEX (?P<name>{_IDENT}) ON ")
_UNIQUE = re.compile(
    r"^UNIQUE(?P<nulls> NULLS NOT DISTINCT)? \((?P<cols>.+?)\)(?: INCLUDE \((?P<inc>.+?)\))?"
    r"(?: WITH \((?P<with>.+?)\))?(?: USING INDEX TABLESPACE (?P<ts>\S+))?"
    r"(?P<defer>(?: DEFERRABLE)?(?: INITIALLY DEFERRED)?)$"
)
_REFUSED = (
    (re.compile(r" ADD GENERATED "), "an identity column"),
    (re.compile(r" REPLICA IDENTITY USING INDEX "), "a replica identity index"),
)


def _unquoted(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


@dataclass(frozen=True)
class OnlineColumn:
    """``ColumnPlan``'s finishing statements, sorted into the phases of online mode."""

    constraints: tuple[tuple[str, str, Sql], ...]
    indexes: tuple[ConcurrentIndex, ...]
    not_null: tuple[NotNull, ...]
    contract: tuple[Step, ...]


def online_column(target: ColumnPlan) -> OnlineColumn:
    """Sort ``target``'s foreign keys, attached objects, default and NOT NULL (see the
    module docstring); ``UsageError`` for what has no online form."""
    table, schema = target.table, target.schema
    constraints = [
        (table, name, ddl.add_foreign_key(table, [target.column], name, spec, schema=schema))
        for name, spec in target.explicit_fks
    ]
    contract: list[Step] = []
    for name, definition in target.recorded_fks:
        added = ddl.add_constraint_definition(table, name, definition, schema=schema)
        if definition.endswith(" NOT VALID"):
            contract.append(Run(added))
        else:
            constraints.append((table, name, added))
    indexes: list[ConcurrentIndex] = []
    for statement in target.attached:
        _refuse(target, statement)
        index = _INDEX.match(statement)
        found = _CONSTRAINT.match(statement)
        if index:
            name = _unquoted(index["name"])
            indexes.append(ConcurrentIndex(table, name, concurrently(statement)))
        elif found and found["d"].startswith("CHECK ") and not statement.endswith(" NOT VALID"):
            constraints.append((table, _unquoted(found["name"]), sql.SQL(statement)))
        elif found and found["d"].startswith("UNIQUE"):
            index_, attach = _unique(target, found["table"], found["name"], found["d"])
            indexes.append(index_)
            contract.append(Run(attach))
        else:
            contract.append(Run(sql.SQL(statement)))
    if target.default is not None:
        contract.append(Run(ddl.set_default(table, target.column, target.default, schema=schema)))
    not_null = () if target.nullable else (NotNull(table, target.column, target.set_not_null()),)
    return OnlineColumn(tuple(constraints), tuple(indexes), not_null, tuple(contract))


def _refuse(target: ColumnPlan, statement: str) -> None:
    found = _CONSTRAINT.match(statement)
    what = "an EXCLUDE constraint" if found and found["d"].startswith("EXCLUDE") else None
    for pattern, name in _REFUSED:
        if pattern.search(statement):
            what = name
    if what is not None:
        raise UsageError(
            f"online mode: {target.where} comes back with {what} ({statement!r}), which"
            " cannot be re-created without a long lock; run this operation without online mode"
        )


def _unique(
    target: ColumnPlan, table_sql: str, name: str, definition: str
) -> tuple[ConcurrentIndex, Sql]:
    """The index of a recorded UNIQUE constraint, built concurrently, and the statement
    that attaches the constraint to it at the contract."""
    found = _UNIQUE.match(definition)
    if found is None:
        raise UsageError(
            f"online mode: the UNIQUE constraint {name} of {target.where} ({definition!r}) has"
            " a form online mode cannot rebuild concurrently; run this operation without"
            " online mode"
        )
    index = f"CREATE UNIQUE INDEX {name} ON {table_sql} USING btree ({found['cols']})"
    index += f" INCLUDE ({found['inc']})" if found["inc"] else ""
    index += " NULLS NOT DISTINCT" if found["nulls"] else ""
    index += f" WITH ({found['with']})" if found["with"] else ""
    index += f" TABLESPACE {found['ts']}" if found["ts"] else ""
    attach = f"ALTER TABLE {table_sql} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}"
    return (
        ConcurrentIndex(target.table, _unquoted(name), concurrently(index)),
        sql.SQL(attach + found["defer"]),
    )
