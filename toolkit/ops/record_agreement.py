"""An inverse's explicit arguments against the record: agreeing is fine, contradicting is
refused before anything changes.

A hand-written inverse (``restore_column_from_jsonb``, ``collapse_junction_to_fk``,
``move_fk_to_parent``) takes what it is not told from the definition the stash recorded
when the column was dropped. An argument it is told and that says something else (another
type, nullability, referent, foreign-key name or option) would silently change the schema
the round trip is meant to give back: the operation raises a ``UsageError`` naming the
argument, what it says and what the record says.
"""

from __future__ import annotations

import re

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops.fk_args import ForeignKeyArgs, recorded_options
from toolkit.ops.reflect import ColumnDef
from toolkit.ops.runtime import Runner
from toolkit.sql.idents import literal, split_name

_TYPMOD = re.compile(r"\(([^)]*)\)")


def _refuse(runner: Runner, where: str, argument: str, says: str, record: str) -> UsageError:
    return UsageError(
        f"refused: {runner.operation}: {argument}={says} contradicts the record of {where}"
        f" ({record}); leave {argument} out to take it from the record (the column's"
        " definition when it was dropped), or change the column after the operation"
    )


def same_type(runner: Runner, given: str, recorded: str) -> bool:
    """Whether two type expressions name the same type (and type modifier), as PostgreSQL
    reads them (``varchar(20)`` is ``character varying(20)``)."""
    query = sql.SQL("SELECT to_regtype({}) IS NOT DISTINCT FROM to_regtype({})").format(
        literal(given), literal(recorded)
    )

    def typmod(text: str) -> str:
        found = _TYPMOD.search(text)
        return "".join(found.group(1).split()) if found else ""

    return bool(runner.scalar(query)) and typmod(given) == typmod(recorded)


def refuse_contradictions(
    runner: Runner,
    where: str,
    record: ColumnDef,
    *,
    type_text: str | None,
    nullable: bool | None,
    fk: ForeignKeyArgs,
) -> None:
    """Raise if an explicit argument contradicts ``record`` (the column ``where``)."""
    if type_text is not None and not same_type(runner, type_text, record.type_text):
        raise _refuse(runner, where, "type_", repr(type_text), f"type {record.type_text}")
    if nullable is not None and nullable != record.nullable:
        said = "nullable" if record.nullable else "NOT NULL"
        raise _refuse(runner, where, "nullable", repr(nullable), said)
    _refuse_foreign_key(runner, where, record, fk)


def _refuse_foreign_key(runner: Runner, where: str, record: ColumnDef, fk: ForeignKeyArgs) -> None:
    """The foreign-key arguments against the recorded foreign keys of the column."""
    recorded = record.foreign_keys
    described = "; ".join(f"{name}: {definition}" for name, definition in recorded) or "no key"
    candidates = list(recorded)
    if fk.referent_table is not None:
        key = fk.referent_key
        # "ref.goals" names schema ref; a bare name matches the recorded table in any schema
        schema, table = split_name(fk.referent_table)
        candidates = [
            named
            for named, (r_schema, r_table, columns) in zip(
                recorded, record.fk_referents, strict=True
            )
            if r_table == table
            and schema in (None, r_schema)
            and (key is None or columns == (key,))
        ]
        if not candidates:
            said = repr(fk.referent_table)
            raise _refuse(runner, where, "referent_table", said, f"foreign keys: {described}")
    if fk.name is not None and fk.name not in [name for name, _ in candidates]:
        raise _refuse(runner, where, "fk_name", repr(fk.name), f"foreign keys: {described}")
    for argument, word in fk.options().items():
        for name, definition in candidates:
            if recorded_options(definition)[argument] != word:
                said = repr(getattr(fk, argument))
                raise _refuse(runner, where, argument, said, f"{name}: {definition}")
