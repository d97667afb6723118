"""Stashing values into a row's JSONB and getting them back: the steps shared by
``stash_column_in_jsonb`` / ``restore_column_from_jsonb`` and the move operations."""

from __future__ import annotations

from functools import partial

from toolkit.errors import UsageError
from toolkit.ops import reflect
from toolkit.ops.runtime import Runner
from toolkit.sql.idents import Sql
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.stash import analyze_stash, ensure_stash, if_stash_exists

DEFAULT_JSONB = "metadata"


def legacy_key(column: str) -> str:
    """The default JSONB key a column is stashed under."""
    return f"legacy_{column}"


def key_columns(
    runner: Runner, table: str, given: str | tuple[str, ...] | None, schema: str | None
) -> tuple[str, ...]:
    """The table's primary key: given, else reflected online (offline it must be given)."""
    if given is not None:
        return (given,) if isinstance(given, str) else tuple(given)
    return reflect.primary_key(runner, table, schema)


def check_jsonb_column(runner: Runner, table: str, column: str, schema: str | None) -> None:
    """Online: the JSONB column must exist and be ``jsonb``."""
    found = reflect.existing_column(runner, table, column, schema)
    if found.type_text != "jsonb":
        raise UsageError(f"{runner.operation}: {table}.{column} is {found.type_text}, not jsonb")


def stash_values(runner: Runner, slot: JsonbSlot, row_filter: Sql | None = None) -> tuple[int, int]:
    """Write the slot's non-NULL values (of rows matching ``row_filter``) into the JSONB,
    remembering which JSONB were NULL; returns (values stashed, NULL JSONB remembered)."""
    runner.run(ensure_stash(slot.schema))
    # Left over by a stash whose column was re-added by hand: no row holds the key (checked).
    runner.run(slot.unregister_key())
    runner.run(slot.forget_marks_if_nothing_stashed())
    with runner.without_nested_loops():
        runner.run(slot.forget_stale_marks())
    was_null = runner.run(slot.mark_null_jsonb(row_filter))
    runner.run(slot.register_key())
    runner.run(analyze_stash(slot.schema))
    return runner.run(slot.write_values(row_filter)), was_null


def restore_values(
    runner: Runner, slot: JsonbSlot, type_text: str, *, keep_existing: bool = False
) -> int:
    """Move the stashed values back into the (re-added) column, remove the key, give NULL
    back to the JSONB that were NULL and hold no other stashed key; returns the rows whose
    key was removed."""
    values = slot.restore_values(type_text, keep_existing=keep_existing)
    if not runner.offline and not reflect.stash_exists(runner, slot.schema):
        return runner.run(values)  # nothing was stashed by the toolkit: no marks
    guard = partial(if_stash_exists, schema=slot.schema) if runner.offline else _as_is
    with runner.without_nested_loops():
        # First: the rows it gives NULL back no longer hold the key for the next step.
        restored = runner.run(
            guard(slot.restore_null_jsonb(type_text, keep_existing=keep_existing))
        )
    restored += runner.run(values)
    runner.run(guard(slot.unregister_key()))
    runner.run(guard(slot.forget_marks_if_nothing_stashed()))
    return restored


def _as_is(step: Sql) -> Sql:
    return step
