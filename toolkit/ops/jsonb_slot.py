"""Stashing values into a row's JSONB and getting them back: the steps shared by
``stash_column_in_jsonb`` / ``restore_column_from_jsonb`` and the move operations."""

from __future__ import annotations

from toolkit.errors import UsageError
from toolkit.ops import reflect
from toolkit.ops.refusals import refusal
from toolkit.ops.runtime import Runner
from toolkit.ops.steps import Run, Step
from toolkit.sql.checks import RowCheck
from toolkit.sql.idents import Sql
from toolkit.sql.jsonb_slot import JsonbSlot
from toolkit.sql.planner import nested_loops_back, nested_loops_off
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
    if runner.offline:
        return
    found = reflect.existing_column(runner, table, column, schema)
    if found.type_text != "jsonb":
        raise UsageError(f"{runner.operation}: {table}.{column} is {found.type_text}, not jsonb")


def stash_checks(slot: JsonbSlot, row_filter: Sql | None = None) -> list[RowCheck]:
    """What makes stashing unsafe: a non-object JSONB that would need the key, a key
    already present (restore could not tell it from the stashed one)."""
    names = {"value_column": slot.column, "key": slot.key}
    return [
        refusal(
            "jsonb-not-object", slot.table, slot.jsonb_column, slot.not_object(row_filter), **names
        ),
        refusal("jsonb-key-present", slot.table, slot.jsonb_column, slot.holds_key, **names),
    ]


def orphan_checks(
    slot: JsonbSlot,
    type_text: str,
    referents: list[tuple[str | None, str, str]],
    row_filter: Sql | None = None,
) -> tuple[RowCheck, ...]:
    """Stashed values that would come back pointing to no row of a referent."""
    return tuple(
        refusal(
            "stashed-value-without-referent",
            slot.table,
            slot.jsonb_column,
            slot.orphaned(type_text, ref, row_filter),
            key=slot.key,
            value_column=slot.column,
            referent=ref[1],
            referent_key=ref[2],
        )
        for ref in referents
    )


def stash_steps(slot: JsonbSlot, row_filter: Sql | None = None) -> list[Step]:
    """Write the slot's non-NULL values (of rows matching ``row_filter``) into the JSONB,
    remembering which JSONB were NULL. Tallies ``stashed`` (values) and ``was_null``."""
    return [
        *stash_prelude(slot),
        Run(slot.mark_null_jsonb(row_filter), tally="was_null"),
        Run(slot.register_key()),
        Run(analyze_stash(slot.schema)),
        Run(slot.write_values(row_filter), tally="stashed"),
    ]


def stash_prelude(slot: JsonbSlot) -> list[Step]:
    """Before a stash marks and writes: the stash exists, and what an earlier stash of the
    same JSONB left behind that no longer applies is forgotten."""
    return [
        Run(ensure_stash(slot.schema)),
        # Left over by a stash whose column was re-added by hand: no row holds the key (checked).
        Run(slot.unregister_key()),
        Run(slot.forget_marks_if_nothing_stashed()),
        Run(nested_loops_off()),
        Run(slot.forget_stale_marks()),
        Run(nested_loops_back()),
    ]


def restore_steps(
    slot: JsonbSlot,
    type_text: str,
    *,
    stash: bool | None,
    keep_existing: bool = False,
    tally: str | None = "restored",
) -> list[Step]:
    """Move the stashed values back into the (re-added) column, remove the key, give NULL
    back to the JSONB that were NULL and hold no other stashed key; ``tally`` counts the
    rows whose key was removed. ``stash``: whether the stash exists (online), None offline
    (each step then runs only if it exists when the script runs)."""
    values = Run(slot.restore_values(type_text, keep_existing=keep_existing), tally)
    if stash is False:
        return [values]  # nothing was stashed by the toolkit: no marks

    def guarded(step: Sql) -> Sql:
        return if_stash_exists(step, slot.schema) if stash is None else step

    return [
        Run(nested_loops_off()),
        # First: the rows it gives NULL back no longer hold the key for the next step.
        Run(guarded(slot.restore_null_jsonb(type_text, keep_existing=keep_existing)), tally),
        Run(nested_loops_back()),
        values,
        Run(guarded(slot.unregister_key())),
        Run(guarded(slot.forget_marks_if_nothing_stashed())),
    ]


def stash_state(runner: Runner, schema: str | None) -> bool | None:
    """Whether the toolkit's stash exists: online a lookup, offline None (unknown)."""
    return None if runner.offline else reflect.stash_exists(runner, schema)
