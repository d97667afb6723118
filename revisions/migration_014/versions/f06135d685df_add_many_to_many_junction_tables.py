"""add many-to-many junction tables and remove redundant columns

Migration 014, written with the toolkit's data-preserving operations: the example to copy.

Upgrade
    ``targets.goal_id`` and ``targets.sprint_id`` become the junction tables
    ``target_goal_links`` and ``target_sprint_links`` (a target may now have several goals
    and several sprints). ``commitments.goal_id``, ``commitments.sprint_id`` and
    ``sprints.goal_id`` are redundant in the new model; their values are kept in each row's
    ``metadata`` under ``legacy_goal_id`` / ``legacy_sprint_id`` instead of being thrown away.

Downgrade
    The exact inverse. Each target gets back its *first* link (by ``created_at, id``); the
    other links are a declared loss, counted and reported, unless ``keep_extra_links`` keeps
    them in the toolkit's stash for the next upgrade. Legacy values come back out of
    ``metadata`` with their keys removed. The five foreign keys are recreated under their
    original names, and ``NOT NULL`` on the two target columns.

Each direction runs its five operations as one (``op.run_lossless``): every check of every
operation runs before the first change, and the tables are locked first, in one order.

Options of the downgrade (``alembic -x NAME=VALUE downgrade ...``; ``lossless`` passes them
the same way):

``on_missing`` (default ``refuse``)
    A target with no goal link or no sprint link cannot get its NOT NULL column back.
    ``refuse`` stops the downgrade before anything changes and names those targets;
    ``keep_null`` leaves them NULL and the column nullable; ``fill`` gives them
    ``fill_goal_id`` / ``fill_sprint_id`` (ids that must exist; a column without its fill
    value keeps ``refuse``).
``keep_extra_links`` (default ``false``)
    ``true`` keeps the links beyond the first in the toolkit's stash (table
    ``lossless_stash``) instead of losing them; the next upgrade puts them back verbatim.

Revision ID: f06135d685df
Revises: e1a0c0de0013
Create Date: 2024-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context

from toolkit.op import op
from toolkit.ops import (
    CollapseJunctionToFkOp,
    PromoteFkToJunctionOp,
    RestoreColumnFromJsonbOp,
    StashColumnInJsonbOp,
)

revision: str = "f06135d685df"
down_revision: str | Sequence[str] | None = "e1a0c0de0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRUE = ("1", "true", "yes", "on")


def _on_missing(options: dict[str, str], column: str) -> tuple[str, str | None]:
    """The downgrade's policy (``on_missing``, ``fill_value``) for targets that have no link
    to restore ``column`` from."""
    mode = options.get("on_missing", "refuse")
    if mode != "fill":
        return mode, None
    fill_value = options.get(f"fill_{column}")
    # Without a value to fill this column with, its targets keep the safe default.
    return ("fill" if fill_value else "refuse"), fill_value


def upgrade() -> None:
    """Move the target FKs to junction tables; stash the redundant FK columns in metadata."""
    # Each promote creates the junction (id, target_id, <referent>, created_at), copies every
    # non-NULL (targets.id, targets.<column>) pair, then adds the unique constraint, one index
    # per FK column (ix_<junction>_<column>) and both FKs ON DELETE CASCADE (loading before
    # constraining is what keeps it fast), and only then drops targets_<column>_fkey (looked
    # up, not guessed) and the column.
    # Keys (owner_key, referent_key, primary_key) are read from the catalog when online; they
    # are spelled out so that the same revision also renders as SQL (alembic upgrade --sql).
    op.run_lossless(
        PromoteFkToJunctionOp(
            "targets",
            "goal_id",
            junction="target_goal_links",
            owner_column="target_id",
            referent_column="goal_id",
            referent_table="client_goals",
            referent_key="id",
            owner_key="id",
            unique_name="uq_target_goal",
            ondelete="CASCADE",
        ),
        PromoteFkToJunctionOp(
            "targets",
            "sprint_id",
            junction="target_sprint_links",
            owner_column="target_id",
            referent_column="sprint_id",
            referent_table="sprints",
            referent_key="id",
            owner_key="id",
            unique_name="uq_target_sprint",
            ondelete="CASCADE",
        ),
        # The new model no longer ties commitments and sprints to goals directly, but their
        # old values are history that a downgrade must give back: keep them in the row's
        # metadata. Only non-NULL values are written, so NULL metadata, {} and unrelated keys
        # come back exactly as they were.
        StashColumnInJsonbOp(
            "commitments",
            "goal_id",
            jsonb_column="metadata",
            key="legacy_goal_id",
            primary_key="id",
        ),
        StashColumnInJsonbOp(
            "commitments",
            "sprint_id",
            jsonb_column="metadata",
            key="legacy_sprint_id",
            primary_key="id",
        ),
        StashColumnInJsonbOp(
            "sprints", "goal_id", jsonb_column="metadata", key="legacy_goal_id", primary_key="id"
        ),
    )


def _collapse(
    junction: str, column: str, referent: str, options: dict[str, str]
) -> CollapseJunctionToFkOp:
    """The first link per target back into ``targets.<column>`` (NOT NULL, its FK by name)."""
    on_missing, fill_value = _on_missing(options, column)  # refuse (default), keep_null or fill
    return CollapseJunctionToFkOp(
        junction,
        table="targets",
        column=column,
        owner_column="target_id",
        referent_column=column,
        referent_table=referent,
        referent_key="id",
        order_by=("created_at", "id"),  # the first link wins; ties broken by id, never luck
        type_="uuid",
        nullable=False,
        fk_name=f"targets_{column}_fkey",
        on_missing=on_missing,
        fill_value=fill_value,
        keep_extra_links=options.get("keep_extra_links", "false").lower() in _TRUE,
        owner_key="id",
    )


def _restore(table: str, column: str, referent: str) -> RestoreColumnFromJsonbOp:
    """``table.<column>`` back out of ``metadata -> legacy_<column>`` (uuid, its FK by name)."""
    return RestoreColumnFromJsonbOp(
        table,
        column,
        jsonb_column="metadata",
        key=f"legacy_{column}",
        type_="uuid",
        foreign_key=(referent, "id"),
        fk_name=f"{table}_{column}_fkey",
        primary_key="id",
    )


def downgrade() -> None:
    """Restore the five FK columns: first link per target, legacy values out of metadata."""
    options = context.get_x_argument(as_dictionary=True)
    # Every operation checks before any of them changes anything (run_lossless), and the
    # revision is one transaction, so a refusal anywhere leaves nothing half-done. A target
    # left without a link is the likeliest refusal: the collapses come first.
    # Values come back with their type (uuid) and the keys leave metadata again; a row whose
    # metadata was NULL before the upgrade gets NULL back, not {}, whatever the order of the
    # restores (the toolkit marks the row's JSONB, not one stashed column). Reverse order is
    # kept anyway: it reads as the mirror image of upgrade().
    op.run_lossless(
        _collapse("target_sprint_links", "sprint_id", "sprints", options),
        _collapse("target_goal_links", "goal_id", "client_goals", options),
        _restore("sprints", "goal_id", "client_goals"),
        _restore("commitments", "sprint_id", "sprints"),
        _restore("commitments", "goal_id", "client_goals"),
    )
