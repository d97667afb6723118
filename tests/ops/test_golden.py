"""The offline SQL of each operation, compared with a golden file (no database).

``tests/ops/golden/<case>.sql`` holds what ``alembic upgrade --sql`` prints for the case.
A difference fails with a diff; after an intended change, rewrite the files with::

    LOSSLESS_UPDATE_GOLDEN=1 pytest tests/ops/test_golden.py

and review ``git diff tests/ops/golden``. That the printed scripts do what the online run
does is shown by the round trips of ``test_offline.py``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ops.helpers import offline_sql
from tests.ops.test_offline import collapse, promote, restore, stash, to_child, to_parent
from toolkit.ops import PromoteFkToJunctionOp, StashColumnInJsonbOp

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("LOSSLESS_UPDATE_GOLDEN") == "1"


def batch(op: Any) -> None:
    op.run_lossless(
        StashColumnInJsonbOp("commitments", "goal_id", primary_key="id"),
        PromoteFkToJunctionOp(
            "targets",
            "goal_id",
            junction="target_goal_links",
            owner_column="target_id",
            referent_column="goal_id",
            referent_table="client_goals",
            referent_key="id",
            owner_key="id",
        ),
    )


def keep_null_collapse(op: Any) -> None:
    op.collapse_junction_to_fk(
        "target_goal_links",
        table="targets",
        column="goal_id",
        owner_column="target_id",
        referent_column="goal_id",
        type_="uuid",
        nullable=False,
        on_missing="keep_null",
        keep_extra_links=True,
        owner_key="id",
    )


def restore_with_fk_options(op: Any) -> None:
    """Offline, every option of the foreign key is an argument (online: the record)."""
    op.restore_column_from_jsonb(
        "commitments",
        "goal_id",
        type_="uuid",
        foreign_key=("client_goals", "id"),
        fk_name="commitments_goal_fk",
        ondelete="SET NULL",
        onupdate="CASCADE",
        deferrable=True,
        initially="DEFERRED",
        match="FULL",
        primary_key="id",
    )


CASES: dict[str, Callable[[Any], Any]] = {
    "promote_fk_to_junction": promote,
    "collapse_junction_to_fk": collapse,
    "collapse_junction_to_fk_keep_null_keep_links": keep_null_collapse,
    "stash_column_in_jsonb": stash,
    "restore_column_from_jsonb": restore,
    "restore_column_from_jsonb_fk_options": restore_with_fk_options,
    "move_fk_to_child": to_child,
    "move_fk_to_parent": to_parent,
    "run_lossless": batch,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_offline_sql_matches_the_golden_file(case: str) -> None:
    path = GOLDEN / f"{case}.sql"
    script = offline_sql(CASES[case])
    if UPDATE:
        path.write_text(script, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            script.splitlines(keepends=True),
            f"golden/{case}.sql",
            "printed now",
        )
    )
    assert script == expected, f"offline SQL changed (LOSSLESS_UPDATE_GOLDEN=1 rewrites):\n{diff}"


def test_every_golden_file_has_its_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.sql")) == sorted(CASES)
