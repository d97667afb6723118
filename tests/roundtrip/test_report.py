"""Rendering a round-trip report: no database, hand-made steps."""

from __future__ import annotations

from toolkit.ops.results import OpResult
from toolkit.roundtrip import LossCheck, RoundTripReport, StepReport
from toolkit.verify import RowChanges

LOSSES = StepReport(
    name="new shape",
    revision="b -> a -> b",
    seconds=0.5,
    ops=(OpResult("collapse_junction_to_fk", "targets", {"collapsed": 10, "lost": 3}),),
    losses=(
        LossCheck("links", 3, declared=True, expected=3, column="goal_id", reason="first kept"),
        LossCheck("notes", 2, declared=False),
    ),
    rows=(RowChanges("notes", ("id",), 5, 5, 2, 2, 0, 0, 2, samples=("id=1", "id=4")),),
    problems=("notes: 2 row(s) did not come back, and no loss is declared",),
)
REPORT = RoundTripReport(
    subject="demo",
    kind="scenario",
    server="PostgreSQL 18 at postgresql://u:***@h/db",
    rows=5,
    seed=0,
    steps=(
        StepReport(name="prepare", revision="-> a", seconds=0.1),
        StepReport(name="upgrade", revision="a -> b", error="boom"),
        LOSSES,
        StepReport(name="later", revision="b", skipped="not needed"),
    ),
)


def test_ok_and_statuses() -> None:
    assert not REPORT.ok
    assert [s.status for s in REPORT.steps] == ["ok", "ERROR", "FAILED", "skipped"]
    assert REPORT.problems == (
        "upgrade (a -> b): error: boom",
        "new shape (b -> a -> b): notes: 2 row(s) did not come back, and no loss is declared",
    )


def test_render_has_a_summary_table_and_a_section_per_step() -> None:
    lines = REPORT.render().splitlines()

    assert lines[0] == "round trip of scenario demo: FAILED"
    header = next(line for line in lines if line.startswith("step "))
    columns = header.split()
    assert columns[:3] == ["step", "revision", "seconds"] and columns[-1] == "result"
    assert {"moved", "stashed", "restored", "collapsed", "lost", "dropped"} <= set(columns)
    assert "== new shape (b -> a -> b): FAILED, 0.50 s" in lines
    assert "skipped: not needed" in lines
    losses = lines[lines.index("losses:") + 1 :]
    assert losses[2].split() == ["links", "goal_id", "yes", "3", "3", "-", "ok"]
    assert losses[3].split() == ["notes", "-", "no", "-", "2", "-", "FAIL"]
    assert losses[4].split() == ["(all", "tables)", "3", "5", "3"]
    assert losses[5] == "  links.goal_id: first kept"


def test_render_failures_keeps_only_failed_steps() -> None:
    text = REPORT.render_failures()

    assert text.splitlines()[0].startswith("lossless round trip of scenario demo: 2 of 4 step(s)")
    assert "- step upgrade (a -> b) -" in text and "error: boom" in text
    assert "notes: 2 of 5 rows did not come back unchanged" in text
    assert "prepare" not in text


def test_json_carries_counts_and_checks() -> None:
    data = REPORT.to_json()

    new_shape = data["steps"][2]
    assert new_shape["counts"]["lost"] == 3 and new_shape["counts"]["collapsed"] == 10
    assert new_shape["losses"][1] == {
        "table": "notes",
        "column": None,
        "declared": False,
        "expected": None,
        "found": 2,
        "reported": None,
        "reason": "",
        "ok": False,
    }
    assert new_shape["rows"][0]["samples"] == ["id=1", "id=4"]
    assert data["ok"] is False and len(data["problems"]) == 2
