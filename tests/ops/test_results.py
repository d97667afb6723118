"""``OpResult``: what reports show of an operation (no database)."""

from __future__ import annotations

from dataclasses import replace

from toolkit.ops import OpResult, recording
from toolkit.ops.results import publish


def test_summary_names_table_and_column() -> None:
    result = OpResult(
        "stash_column_in_jsonb", "commitments", {"stashed": 8, "lost": 0}, column="goal_id"
    )
    assert result.where == "commitments.goal_id"
    assert result.summary() == "stash_column_in_jsonb: stashed 8, lost 0 (commitments.goal_id)"


def test_summary_offline_and_without_counts() -> None:
    offline = OpResult("restore_column_from_jsonb", "t", column="v", offline=True)
    assert offline.summary() == "restore_column_from_jsonb (t.v; offline: counts unknown)"
    assert OpResult("noop", "t").summary() == "noop (t)"


def test_summary_shows_the_operations_description() -> None:
    # What ``describe()`` says replaces the operation's name and place in logs and reports.
    described = OpResult(
        "stash_column_in_jsonb",
        "commitments",
        {"stashed": 8, "lost": 0},
        column="goal_id",
        description="Stash commitments.goal_id in metadata['goal_id']",
    )
    assert (
        described.summary() == "Stash commitments.goal_id in metadata['goal_id']: stashed 8, lost 0"
    )
    offline = replace(described, counts={}, offline=True)
    assert offline.summary() == (
        "Stash commitments.goal_id in metadata['goal_id'] (offline: counts unknown)"
    )


def test_positional_construction_still_works() -> None:
    # Results built by hand before ``column`` existed: (operation, table, counts).
    result = OpResult("copy_emails", "contacts", {"moved": 3})
    assert (result.column, result.counts, result.lost) == (None, {"moved": 3}, 0)
    assert result.summary() == "copy_emails: moved 3 (contacts)"
    with recording() as seen:
        publish(result)
    assert seen == [result]
