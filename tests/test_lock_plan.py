"""Which table locks a revision's statements need (SQL text only, no database)."""

from __future__ import annotations

from toolkit.sql.lock_plan import Drop, NeededLock, needed_locks


def _referents(drop: Drop) -> list[tuple[str, str]]:
    keys = {
        ("column", "targets", "goal_id"): [("public", "client_goals")],
        ("table", "target_goal_links", ""): [("public", "targets"), ("public", "client_goals")],
    }
    return keys.get((drop.kind, drop.table, drop.name), [])


def test_strongest_mode_per_table_in_schema_then_name_order() -> None:
    statements = [
        "LOCK TABLE targets IN SHARE ROW EXCLUSIVE MODE",
        "CREATE TABLE target_goal_links AS SELECT t.id FROM targets AS t WITH NO DATA",
        "INSERT INTO target_goal_links (target_id) SELECT id FROM targets",
        "CREATE INDEX ix_a ON target_goal_links (target_id)",
        "ALTER TABLE target_goal_links ADD CONSTRAINT fk FOREIGN KEY (goal_id) "
        "REFERENCES client_goals(id) ON DELETE CASCADE",
        "UPDATE commitments AS t SET metadata = '{}'",
        "-- squawk-ignore ban-drop-column\nALTER TABLE targets DROP COLUMN goal_id",
        'ALTER TABLE "Other"."Odd Name" ADD COLUMN x int',
        "INSERT INTO lossless_stash (kind) VALUES ('x')",
        "ANALYZE lossless_stash",
    ]

    assert needed_locks(statements, schema="public", referents=_referents) == [
        NeededLock("Other", "Odd Name", "ACCESS EXCLUSIVE"),
        NeededLock("public", "client_goals", "ACCESS EXCLUSIVE"),  # the dropped key's referent
        NeededLock("public", "commitments", "ROW EXCLUSIVE"),
        NeededLock("public", "targets", "ACCESS EXCLUSIVE"),
    ]


def test_adding_a_foreign_key_takes_share_row_exclusive_on_both_tables() -> None:
    statements = [
        "ALTER TABLE targets ADD CONSTRAINT targets_goal_id_fkey FOREIGN KEY (goal_id) "
        "REFERENCES client_goals(id)"
    ]
    assert needed_locks(statements, schema="app") == [
        NeededLock("app", "client_goals", "SHARE ROW EXCLUSIVE"),
        NeededLock("app", "targets", "SHARE ROW EXCLUSIVE"),
    ]


def test_dropping_a_table_locks_what_its_keys_reference() -> None:
    statements = ["DROP TABLE target_goal_links", "ALTER TABLE targets ADD COLUMN goal_id uuid"]
    assert needed_locks(statements, schema="public", referents=_referents) == [
        NeededLock("public", "client_goals", "ACCESS EXCLUSIVE"),
        NeededLock("public", "target_goal_links", "ACCESS EXCLUSIVE"),
        NeededLock("public", "targets", "ACCESS EXCLUSIVE"),
    ]


def test_blocks_and_queries_take_no_table_lock_worth_taking_first() -> None:
    statements = [
        "DO $x$ BEGIN PERFORM count(*) FROM targets; END $x$",
        "SELECT set_config('enable_nestloop', 'off', true)",
    ]
    assert needed_locks(statements, schema="public") == []
