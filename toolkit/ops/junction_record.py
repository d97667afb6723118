"""The junction a collapse recorded (``toolkit.sql.junction_record``), read back by the
promote that re-creates it, and the promote's arguments compared with it.

A promote whose junction was recorded re-creates that junction exactly (its columns,
names, options, links with their own values) instead of the toolkit's own shape. An
argument that says something else than the record (another junction name, link column,
referent, unique constraint, ``ON DELETE`` or ``index``) is refused before anything
changes (as ``toolkit.ops.record_agreement`` does for a column's record).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from toolkit.errors import UsageError
from toolkit.ops import reflect
from toolkit.ops.runtime import Runner
from toolkit.sql.idents import split_name
from toolkit.sql.junction_record import recorded_junction
from toolkit.sql.lookups import regclass

#: ``confdeltype`` codes by the ``ON DELETE`` word.
_ACTIONS = {"NO ACTION": "a", "RESTRICT": "r", "CASCADE": "c", "SET NULL": "n", "SET DEFAULT": "d"}


@dataclass(frozen=True)
class JunctionRecord:
    """What a collapse recorded of the junction it dropped."""

    create: str
    before_load: tuple[str, ...]
    statements: tuple[str, ...]
    columns: tuple[str, ...]
    constraints: tuple[dict[str, Any], ...]
    indexes: tuple[str, ...]
    column_recorded: bool

    def foreign_key(self, column: str) -> dict[str, Any] | None:
        """The recorded foreign key on ``column`` alone, if any."""
        for con in self.constraints:
            if con["type"] == "f" and con["columns"] == [column]:
                return con
        return None


def read(runner: Runner, table: str, column: str, schema: str | None) -> JunctionRecord | None:
    """The junction recorded for ``table.column`` (online), if any."""
    if runner.offline or not reflect.stash_exists(runner, schema):
        return None
    payload = reflect.json_value(runner, recorded_junction(table, column, schema=schema))
    if payload is None:
        return None
    return JunctionRecord(
        create=str(payload["create"]),
        before_load=tuple(payload["before_load"]),
        statements=tuple(payload["statements"]),
        columns=tuple(payload["columns"]),
        constraints=tuple(payload["constraints"]),
        indexes=tuple(payload["indexes"]),
        column_recorded=bool(payload["column_recorded"]),
    )


def _refused(argument: str, says: object, record: str, where: str) -> UsageError:
    return UsageError(
        f"refused: promote_fk_to_junction: {argument}={says!r} contradicts the record of the"
        f" junction {where} was collapsed from ({record}); leave {argument} out to take it"
        " from the record, or change the junction after the operation"
    )


def refuse_contradictions(record: JunctionRecord, op: Any, where: str) -> None:
    """Raise if one of the promote ``op``'s explicit arguments contradicts ``record``."""
    if f".{_quoted(op.junction)} (" not in record.create:
        raise _refused("junction", op.junction, record.create.split(" (")[0], where)
    for argument in ("owner_column", "referent_column"):
        if getattr(op, argument) not in record.columns:
            columns = "columns " + ", ".join(record.columns)
            raise _refused(argument, getattr(op, argument), columns, where)
    names = [con["name"] for con in record.constraints]
    if op.unique_name is not None and op.unique_name not in names:
        raise _refused("unique_name", op.unique_name, "constraints " + ", ".join(names), where)
    _refuse_foreign_keys(record, op, where)
    if isinstance(op.index, bool):
        wanted = {f"ix_{op.junction}_{c}" for c in (op.owner_column, op.referent_column)}
        if wanted <= set(record.indexes) if op.index else not wanted & set(record.indexes):
            return
        raise _refused("index", op.index, "indexes " + ", ".join(record.indexes), where)


def _refuse_foreign_keys(record: JunctionRecord, op: Any, where: str) -> None:
    """``referent_table``/``referent_key`` and ``ondelete`` against the recorded keys."""
    referent = record.foreign_key(op.referent_column)
    if op.referent_table is not None and referent is not None:
        schema, table = split_name(op.referent_table)
        key = op.referent_key
        if (
            table != referent["referent_table"]
            or schema not in (None, referent["referent_schema"])
            or (key is not None and referent["referent_columns"] != [key])
        ):
            said = f"{referent['referent_schema']}.{referent['referent_table']}"
            raise _refused("referent_table", op.referent_table, said, where)
    if not isinstance(op.ondelete, str | None):
        return
    code = _ACTIONS.get((op.ondelete or "NO ACTION").upper())
    for column in (op.owner_column, op.referent_column):
        fk = record.foreign_key(column)
        if fk is not None and fk["ondelete"] != code:
            action = {v: k for k, v in _ACTIONS.items()}.get(fk["ondelete"], fk["ondelete"])
            raise _refused("ondelete", op.ondelete, f"{fk['name']} ON DELETE {action}", where)


def _quoted(name: str) -> str:
    from toolkit.sql.idents import ident, render

    return render(ident(name))


def refuse_generated(runner: Runner, junction: str, schema: str | None) -> None:
    """Online: a junction to be recorded cannot have generated columns (their values could
    not be inserted back): refused, naming them."""
    query = sql.SQL(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a"
        " WHERE a.attrelid = {} AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> ''"
    ).format(regclass(junction, schema))
    names = runner.scalar(query)
    if names:
        raise UsageError(
            f"refused: collapse_junction_to_fk: {junction} has generated column(s) {names},"
            " which its record could not give back; drop them before the collapse and"
            " re-create them after the promote back"
        )
