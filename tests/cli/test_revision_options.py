"""Refusal hints that say how to pass a policy from the command line, and only where it works.

No database: the hint depends on the refusal's structured remedy and on what the revision
that refused reads, which is its script.
"""

from __future__ import annotations

import pytest

from tests.cli.project import REVISIONS, write_project
from toolkit.commands import explain_refusal
from toolkit.commands.revision_options import unread_x_options
from toolkit.commands.watch import Step
from toolkit.errors import DataRefusedError, Remedy
from toolkit.migrate import Project
from toolkit.ops.refusals import CATALOG

POLICY = CATALOG["not-null-without-link"].remedy
FILL = CATALOG["fill-value-without-referent"].remedy
POLICY_HINT = POLICY.text

#: ``r2`` reads its policy from -x, as migration-014's downgrade does; ``r3`` does not.
READS_X = """
from alembic import context


def upgrade():
    pass


def downgrade():
    options = context.get_x_argument(as_dictionary=True)
    policy = options.get("on_missing", "refuse")  # fill: options["fill_goal_id"]
"""
FIXED = """
def upgrade():
    pass


def downgrade():
    pass  # op.collapse_junction_to_fk(..., on_missing="refuse")
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    revisions = {
        "a1": REVISIONS["a1"],
        "r2": ("reads -x", "a1", READS_X),
        "r3": ("fixed policy", "r2", FIXED),
    }
    return Project.from_ini(write_project(tmp_path_factory.mktemp("x"), revisions=revisions))


def _refusal(remedy: Remedy | None, column: str = "goal_id") -> DataRefusedError:
    return DataRefusedError(
        f"have no link and {column} is NOT NULL",
        table="targets",
        column=column,
        count=2,
        samples=["t1", "t2"],
        code="not-null-without-link",
        remedy=remedy,
    )


def _downgrading(revision: str) -> Step:
    return Step("downgrade", (revision,), ("a1",), "")


def test_a_revision_that_reads_the_policy_gets_the_x_options(project: Project) -> None:
    explained = explain_refusal(_refusal(POLICY), project, _downgrading("r2"))

    assert str(explained) == (
        "refused: targets.goal_id: 2 row(s) have no link and goal_id is NOT NULL "
        "(e.g. t1, t2); revision r2 reads this policy from -x: rerun with "
        "-x on_missing=keep_null (column left nullable) or -x on_missing=fill "
        "-x fill_goal_id=ID (an id that exists) to proceed"
    )
    assert (explained.table, explained.column, explained.count, explained.exit_code) == (
        "targets",
        "goal_id",
        2,
        1,
    )
    # No fill option for this column in the revision: the fill mode is named, no option made up.
    other = explain_refusal(_refusal(POLICY, "sprint_id"), project, _downgrading("r2"))
    assert other.hint is not None
    assert other.hint.endswith("or -x on_missing=fill (an id that exists) to proceed")


def test_a_revision_that_does_not_read_x_says_so(project: Project) -> None:
    explained = explain_refusal(_refusal(POLICY), project, _downgrading("r3"))

    assert explained.hint == (
        f"{POLICY_HINT} (an argument of the operation in revision r3, which does not read it "
        "from -x: only the revision can set it)"
    )
    assert "-x on_missing" not in str(explained)


def test_a_fill_value_refusal_names_the_x_option(project: Project) -> None:
    wrong_fill = _refusal(FILL)

    assert explain_refusal(wrong_fill, project, _downgrading("r2")).hint == (
        "revision r2 reads the fill value from -x fill_goal_id=ID: give an id that exists"
    )


def test_other_refusals_are_left_as_they_are(project: Project) -> None:
    unrelated = _refusal(Remedy("give them an address first"))
    assert explain_refusal(unrelated, project, _downgrading("r2")) is unrelated
    # The remedy decides, not the words: a text naming the policy is not a policy remedy.
    text_only = _refusal(Remedy(POLICY_HINT))
    assert explain_refusal(text_only, project, _downgrading("r2")) is text_only
    no_step = _refusal(POLICY)
    assert explain_refusal(no_step, project, None) is no_step


def test_unread_x_options_are_found(project: Project) -> None:
    given = {"on_missing": "keep_null", "fill_goal_id": "g1", "keep_extra_link": "true"}
    assert unread_x_options(project, given) == ("keep_extra_link",)
    assert unread_x_options(project, {}) == ()
