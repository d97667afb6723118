"""Planner settings some statements of the operations need (and give back after)."""

from __future__ import annotations

from psycopg import sql

from toolkit.sql.idents import Sql, literal

_SAVED_NESTLOOP = "lossless.enable_nestloop"


def nested_loops_off() -> Sql:
    """Switch nested-loop joins off for the rest of the transaction, saving the setting.

    For joins of the stash with a table filtered on JSONB expressions: PostgreSQL has no
    statistics for those, guesses about one matching row, and may then re-scan the
    unindexed stash once per row that does match (quadratic). Hash joins stay linear
    whatever the guess. ``nested_loops_back()`` restores the saved setting.
    """
    return sql.SQL(
        "SELECT set_config({}, current_setting('enable_nestloop'), true),"
        " set_config('enable_nestloop', 'off', true)"
    ).format(literal(_SAVED_NESTLOOP))


def nested_loops_back() -> Sql:
    """Give ``enable_nestloop`` back the value ``nested_loops_off()`` saved."""
    return sql.SQL("SELECT set_config('enable_nestloop', current_setting({}), true)").format(
        literal(_SAVED_NESTLOOP)
    )
