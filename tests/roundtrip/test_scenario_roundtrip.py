"""The scenario round-trip engine, on the toy scenario (tests/roundtrip/toy/), real Postgres.

Expected figures are recomputed here from the toy seed's formulas, independently of the
engine: items 1..rows, every fourth without owner, notes NULL for every third.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from tests.roundtrip.toy import FAITHFUL, LOSSY, variant
from toolkit import migrate
from toolkit.migrate import Project
from toolkit.postgres import Server, drop_database
from toolkit.postgres.url import database_name, sqlalchemy_url, with_database
from toolkit.roundtrip import RoundTripReport, StepReport, run_scenario_roundtrip
from toolkit.scenario import DeclaredLoss, Invariant, Scenario
from toolkit.verify import take_snapshot

ROWS = 40
WITH_OWNER = sum(1 for i in range(1, ROWS + 1) if i % 4 != 0)
#: New shape: every fifth item that has an owner gets a second one.
SECOND_OWNERS = sum(1 for i in range(1, ROWS + 1) if i % 4 != 0 and i % 5 == 0)
WITH_NOTE = sum(1 for i in range(1, ROWS + 1) if i % 3 != 0)


def run(server: Server, scenario: Scenario = FAITHFUL, *, keep: bool = False) -> RoundTripReport:
    return run_scenario_roundtrip(scenario, server.url, rows=ROWS, keep=keep)


def step(report: RoundTripReport, name: str) -> StepReport:
    return next(s for s in report.steps if s.name == name)


@pytest.fixture(scope="module")
def faithful(lossless_server: Server) -> RoundTripReport:
    """One faithful run, read by several tests."""
    return run(lossless_server)


def test_faithful_scenario_passes_every_step(faithful: RoundTripReport) -> None:
    report = faithful

    assert report.ok, report.render()
    assert [s.name for s in report.steps] == [
        "prepare",
        "upgrade",
        "downgrade",
        "re-upgrade",
        "new shape",
    ]
    assert step(report, "upgrade").counts["moved"] == WITH_OWNER
    assert step(report, "downgrade").diff is not None and step(report, "downgrade").diff.ok
    assert step(report, "re-upgrade").diff is not None and step(report, "re-upgrade").diff.ok


def test_new_shape_losses_are_counted_three_ways(faithful: RoundTripReport) -> None:
    report = faithful

    new_shape = step(report, "new shape")
    (loss,) = new_shape.losses
    assert (loss.table, loss.column, loss.declared) == ("item_owners", "owner_id", True)
    assert loss.expected == loss.found == loss.reported == SECOND_OWNERS > 0
    (changes,) = [r for r in new_shape.rows if not r.ok]
    assert (changes.table, changes.not_restored, changes.unexpected) == (
        "item_owners",
        SECOND_OWNERS,
        0,
    )
    rendered = report.render()
    assert "item_owners" in rendered and "(all tables)" in rendered


def test_an_undeclared_loss_fails(lossless_server: Server) -> None:
    report = run(lossless_server, variant(declared_losses=()))

    assert not report.ok
    new_shape = step(report, "new shape")
    (loss,) = new_shape.losses
    assert (loss.table, loss.declared, loss.found) == ("item_owners", False, SECOND_OWNERS)
    assert (
        f"item_owners: {SECOND_OWNERS} row(s) did not come back, and no loss is declared"
        in new_shape.problems
    )
    assert f"operations reported {SECOND_OWNERS} row(s) lost, the declarations expect 0" in (
        new_shape.problems
    )


def test_a_declared_loss_of_the_wrong_size_fails(lossless_server: Server) -> None:
    wrong = variant(
        declared_losses=(
            DeclaredLoss(name="extra owners", table="item_owners", expected_sql="SELECT 1"),
        )
    )

    report = run(lossless_server, wrong)
    (loss,) = step(report, "new shape").losses
    assert (loss.expected, loss.found, loss.ok) == (1, SECOND_OWNERS, False)
    assert not report.ok


def test_a_violated_invariant_reports_its_rows(lossless_server: Server) -> None:
    every_item_linked = Invariant(
        "every item has an owner link",
        "SELECT i.id FROM items i WHERE NOT EXISTS "
        "(SELECT 1 FROM item_owners l WHERE l.item_id = i.id) ORDER BY i.id",
    )

    report = run(lossless_server, variant(invariants=(every_item_linked,)))
    upgrade = step(report, "upgrade")
    (result,) = upgrade.invariants
    assert (result.violations, result.samples) == (ROWS - WITH_OWNER, ("4", "8", "12"))
    assert not upgrade.ok and not report.ok


def test_undeclared_volatile_columns_fail_the_re_upgrade(lossless_server: Server) -> None:
    report = run(lossless_server, variant(volatile_columns={}))

    reupgrade = step(report, "re-upgrade")
    assert not reupgrade.ok
    (changes,) = [r for r in reupgrade.rows if not r.ok]
    assert (changes.table, changes.not_restored) == ("item_owners", WITH_OWNER)
    # The regenerated ids are the keys: rows show as vanished and appeared, not changed.
    assert (changes.vanished, changes.appeared) == (WITH_OWNER, WITH_OWNER)


def test_a_lossy_downgrade_names_table_column_and_rows(lossless_server: Server) -> None:
    report = run(lossless_server, LOSSY)

    downgrade = step(report, "downgrade")
    assert not downgrade.ok and not report.ok
    (changes,) = [r for r in downgrade.rows if not r.ok]
    (column,) = changes.columns
    assert (changes.table, column.column, column.rows) == ("items", "note", WITH_NOTE)
    assert changes.samples[0] == "id=1"
    assert any("column items.note changed in" in p for p in downgrade.problems)
    # Steps after a failed comparison still run; the lossy scenario has no new shape.
    assert step(report, "new shape").skipped is not None


def test_a_failing_seed_is_an_error_of_the_prepare_step(lossless_server: Server) -> None:
    def broken_seed(conn: Connection, rows: int, seed: int) -> None:
        conn.execute(text("INSERT INTO nowhere VALUES (1)"))

    report = run(lossless_server, variant(seed=broken_seed))

    (prepare,) = report.steps
    assert prepare.error is not None and 'relation "nowhere" does not exist' in prepare.error
    assert not report.ok


def test_without_new_shape_writer_the_leg_is_skipped(lossless_server: Server) -> None:
    report = run(lossless_server, variant(new_shape=None))

    assert report.ok
    assert step(report, "new shape").status == "skipped"


def test_the_named_database_is_never_changed(lossless_database: str) -> None:
    """``server_url`` names a database: the round trip works beside it, not in it."""
    engine = create_engine(sqlalchemy_url(lossless_database), poolclass=NullPool)
    with engine.connect() as conn:
        before = take_snapshot(conn, exclude_tables=())
    report = run_scenario_roundtrip(FAITHFUL, lossless_database, rows=ROWS)
    with engine.connect() as conn:
        after = take_snapshot(conn, exclude_tables=())
    engine.dispose()

    assert report.ok
    assert before == after and after.tables == ()


def test_keep_leaves_the_scratch_database(lossless_server: Server) -> None:
    report = run(lossless_server, keep=True)

    (note,) = report.notes
    name = note.removeprefix("kept scratch database ")
    try:
        project = Project.for_scenario(FAITHFUL)
        assert migrate.current(project, with_database(lossless_server.url, name)) == (
            FAITHFUL.after,
        )
    finally:
        drop_database(lossless_server.url, name)


def test_a_clone_of_real_data_is_round_tripped_as_is(
    lossless_server: Server, lossless_database: str
) -> None:
    project = Project.for_scenario(FAITHFUL)
    migrate.upgrade(project, lossless_database, FAITHFUL.before)
    engine = create_engine(sqlalchemy_url(lossless_database), poolclass=NullPool)
    with engine.connect() as conn:
        FAITHFUL.seed(conn, 12, 3)
        conn.commit()
        before = take_snapshot(conn)
    engine.dispose()

    report = run_scenario_roundtrip(
        FAITHFUL, lossless_server.url, rows=0, template=database_name(lossless_database)
    )

    assert report.ok, report.render()
    assert "rows: items 12, owners 3" in step(report, "prepare").notes
    engine = create_engine(sqlalchemy_url(lossless_database), poolclass=NullPool)
    with engine.connect() as conn:
        assert take_snapshot(conn) == before
    engine.dispose()


def test_report_json_is_complete(faithful: RoundTripReport) -> None:
    data = json.loads(json.dumps(faithful.to_json()))

    assert (data["format"], data["kind"], data["subject"], data["ok"]) == (
        "lossless.roundtrip/1",
        "scenario",
        "toy",
        True,
    )
    assert data["rows"] == ROWS
    new_shape = data["steps"][-1]
    assert new_shape["losses"][0]["found"] == SECOND_OWNERS
    assert new_shape["counts"]["lost"] == SECOND_OWNERS
    assert all(s["seconds"] >= 0 for s in data["steps"])


@pytest.mark.parametrize("seed", [0, 1])
def test_the_seed_changes_the_data_not_the_verdict(lossless_server: Server, seed: int) -> None:
    assert run_scenario_roundtrip(FAITHFUL, lossless_server.url, rows=8, seed=seed).ok
