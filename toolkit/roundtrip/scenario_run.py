"""The round trip of a bundled scenario, in a scratch database.

upgrade to ``before`` -> seed -> S0 -> upgrade -> invariants -> S1 -> downgrade -> S2 == S0
-> upgrade -> S3 == S1 (volatile columns aside) -> new shape: write data only the new
schema allows -> downgrade -> upgrade -> the rows that did not come back, counted by row
fingerprints, must be exactly the declared losses (and what the operations reported).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from toolkit import migrate
from toolkit.migrate import Project
from toolkit.ops.base import NO_ONLINE_MODE
from toolkit.ops.results import OpResult
from toolkit.roundtrip.report import LossCheck, RoundTripReport, StepReport, op_totals
from toolkit.roundtrip.scratch import Scratch, ScratchDatabases
from toolkit.roundtrip.steps import (
    Comparison,
    Migration,
    State,
    capture_state,
    check_invariants,
    compare_states,
    comparison_problems,
    describe_error,
    run_migration,
    run_sql_count,
    server_label,
)
from toolkit.scenario import Scenario


def run_scenario_roundtrip(
    scenario: Scenario,
    server_url: str,
    *,
    rows: int = 200,
    seed: int = 0,
    template: str | None = None,
    keep: bool = False,
    online: bool = False,
) -> RoundTripReport:
    """Prove ``scenario`` loses nothing undeclared, in a scratch database on that server.

    The scratch database is new (or a clone of database ``template`` on the same server),
    so the database ``server_url`` names is never changed; it is dropped afterwards unless
    ``keep``. ``rows`` (0: no synthetic rows, e.g. on a clone of real data) and ``seed`` go
    to the scenario's seeder. ``online``: every upgrade to the scenario's ``after`` runs
    in online mode (``toolkit.ops.online``), and so does every downgrade when each of its
    operations has an online mode (else, refused before any change, it runs as usual).
    """
    started = time.perf_counter()
    with (
        ScratchDatabases(server_url, keep=keep) as databases,
        databases.connected("lossless_roundtrip", template=template) as db,
    ):
        run = _ScenarioRun(scenario, db, rows=rows, seed=seed, online=online)
        steps = run.steps()
        server = server_label(server_url, db.conn)
    notes = tuple(f"kept scratch database {name}" for name in databases.kept)
    if online:
        notes += (f"every upgrade to {scenario.after} ran in online mode (-x online=true)",)
    if run.down_online:
        notes += (f"every downgrade to {scenario.before} ran in online mode (-x online=true)",)
    elif run.down_online is False:
        notes += (
            f"the downgrades to {scenario.before} ran as usual: an operation of the revision"
            " has no online mode",
        )
    return RoundTripReport(
        subject=scenario.name,
        kind="scenario",
        server=server,
        rows=rows,
        seed=seed,
        steps=tuple(steps),
        seconds=time.perf_counter() - started,
        notes=notes,
    )


class _ScenarioRun:
    """One run. Each step appends its report to ``done`` and returns what later steps
    need (``None`` or ``False`` when they cannot run)."""

    def __init__(
        self, scenario: Scenario, db: Scratch, *, rows: int, seed: int, online: bool = False
    ) -> None:
        self.scenario = scenario
        #: The ``-x`` options of the upgrades to ``after``.
        self.up_x = {"online": "true"} if online else None
        #: Whether the downgrades ran online (None: not asked, or none ran).
        self.down_online: bool | None = None
        self.db = db
        self.rows = rows
        self.seed = seed
        self.project = Project.for_scenario(scenario)
        self.span = f"{scenario.before} -> {scenario.after}"
        self.back = f"{scenario.after} -> {scenario.before}"
        self.volatile = dict(scenario.volatile_columns)

    def _upgrade_to_after(self) -> Migration:
        return run_migration("upgrade", self.project, self.db.url, self.scenario.after, self.up_x)

    def _downgrade_to_before(self) -> Migration:
        """Online as the upgrades when every operation of the downgrade has an online
        mode; one without refuses before any change, and the downgrades then run as usual."""
        before = self.scenario.before
        if self.up_x is not None and self.down_online is not False:
            migration = run_migration("downgrade", self.project, self.db.url, before, self.up_x)
            if migration.error is None or NO_ONLINE_MODE not in migration.error:
                self.down_online = True
                return migration
            self.down_online = False
        return run_migration("downgrade", self.project, self.db.url, before)

    def steps(self) -> list[StepReport]:
        """Run the steps in order, stopping at the first one that cannot be built upon."""
        done: list[StepReport] = []
        s0 = self._prepare(done)
        if s0 is None:
            return done
        s1 = self._upgrade(done)
        if s1 is None or not self._downgrade(done, s0):
            return done
        if not self._reupgrade(done, s1):
            return done
        self._new_shape(done)
        return done

    def _prepare(self, done: list[StepReport]) -> State | None:
        started = time.perf_counter()
        migration = run_migration("upgrade", self.project, self.db.url, self.scenario.before)
        notes: list[str] = []
        error = migration.error
        if error is None:
            heads = migrate.current(self.project, self.db.url)
            if heads != (self.scenario.before,):
                at = ", ".join(heads) or "base"
                error = f"the database is at {at}, not at {self.scenario.before}"
        if error is None and self.rows > 0:
            try:
                self.scenario.seed(self.db.conn, self.rows, self.seed)
                notes.append(f"seeded with rows={self.rows}, seed={self.seed}")
            except Exception as exc:
                error = f"seed failed: {describe_error(exc, self.db.url)}"
        state = None if error else capture_state(self.db.conn, "s0")
        if state is not None:
            notes.append(_table_counts(state))
        done.append(
            StepReport(
                name="prepare",
                revision=f"-> {self.scenario.before}",
                seconds=time.perf_counter() - started,
                ops=migration.ops,
                notes=tuple(notes),
                error=error,
            )
        )
        return state

    def _upgrade(self, done: list[StepReport]) -> State | None:
        started = time.perf_counter()
        migration = self._upgrade_to_after()
        if migration.error is not None:
            done.append(_failed("upgrade", self.span, migration.seconds, migration.error))
            return None
        try:
            invariants = check_invariants(self.db.conn, self.scenario.invariants)
        except Exception as exc:
            error = f"an invariant could not run: {describe_error(exc, self.db.url)}"
            done.append(_failed("upgrade", self.span, time.perf_counter() - started, error))
            return None
        state = capture_state(self.db.conn, "s1", exclude_columns=self.volatile)
        problems = [
            f"invariant {i.name!r} violated by {i.violations} row(s)"
            + (f", e.g. {', '.join(i.samples)}" if i.samples else "")
            for i in invariants
            if not i.ok
        ]
        done.append(
            StepReport(
                name="upgrade",
                revision=self.span,
                seconds=time.perf_counter() - started,
                ops=migration.ops,
                invariants=tuple(invariants),
                problems=tuple(problems),
                notes=(_table_counts(state),),
            )
        )
        return state

    def _downgrade(self, done: list[StepReport], s0: State) -> bool:
        started = time.perf_counter()
        migration = self._downgrade_to_before()
        if migration.error is not None:
            done.append(_failed("downgrade", self.back, migration.seconds, migration.error))
            return False
        s2 = capture_state(self.db.conn, "s2", keep_rows=False)
        comparison = compare_states(self.db.conn, s0, s2)
        problems = comparison_problems(comparison)
        reported = op_totals(migration.ops)["lost"]
        if reported:
            problems.append(
                f"operations reported {reported} row(s) lost on data the old schema holds"
            )
        done.append(
            StepReport(
                name="downgrade",
                revision=self.back,
                seconds=time.perf_counter() - started,
                ops=migration.ops,
                compared="S2 (after downgrade) with S0 (before upgrade)",
                diff=comparison.diff,
                rows=comparison.rows,
                problems=tuple(problems),
            )
        )
        return True

    def _reupgrade(self, done: list[StepReport], s1: State) -> bool:
        started = time.perf_counter()
        migration = self._upgrade_to_after()
        if migration.error is not None:
            done.append(_failed("re-upgrade", self.span, migration.seconds, migration.error))
            return False
        s3 = capture_state(self.db.conn, "s3", exclude_columns=self.volatile, keep_rows=False)
        comparison = compare_states(self.db.conn, s1, s3, exclude_columns=self.volatile)
        volatile = ", ".join(f"{t}.{c}" for t, cols in self.volatile.items() for c in cols)
        done.append(
            StepReport(
                name="re-upgrade",
                revision=self.span,
                seconds=time.perf_counter() - started,
                ops=migration.ops,
                compared="S3 (after re-upgrade) with S1 (after upgrade)",
                diff=comparison.diff,
                rows=comparison.rows,
                problems=tuple(comparison_problems(comparison)),
                notes=(f"volatile columns left out: {volatile}",) if volatile else (),
            )
        )
        return True

    def _new_shape(self, done: list[StepReport]) -> None:
        if self.scenario.new_shape is None:
            done.append(
                StepReport(
                    name="new shape",
                    revision=self.back,
                    skipped="the scenario defines no new-shape writer",
                )
            )
            return
        started = time.perf_counter()
        try:
            self.scenario.new_shape(self.db.conn, self.seed)
        except Exception as exc:
            error = f"new-shape writer failed: {describe_error(exc, self.db.url)}"
            done.append(_failed("new shape", self.back, time.perf_counter() - started, error))
            return
        n0 = capture_state(self.db.conn, "n0", exclude_columns=self.volatile)
        try:
            expected = {
                loss.name: run_sql_count(self.db.conn, loss.expected_sql)
                for loss in self.scenario.declared_losses
            }
        except Exception as exc:
            error = f"a declared loss could not be counted: {describe_error(exc, self.db.url)}"
            done.append(_failed("new shape", self.back, time.perf_counter() - started, error))
            return
        down = self._downgrade_to_before()
        if down.error is not None:
            done.append(_failed("new shape", self.back, time.perf_counter() - started, down.error))
            return
        up = self._upgrade_to_after()
        if up.error is not None:
            done.append(_failed("new shape", self.span, time.perf_counter() - started, up.error))
            return
        n1 = capture_state(self.db.conn, "n1", exclude_columns=self.volatile, keep_rows=False)
        comparison = compare_states(
            self.db.conn, n0, n1, exclude_columns=self.volatile, all_tables=True
        )
        losses, problems = self._judge_losses(comparison, expected, down.ops)
        problems = [
            *(f"{d.describe()}" for d in comparison.diff.schema_differences),
            *problems,
        ]
        done.append(
            StepReport(
                name="new shape",
                revision=f"{self.back} -> {self.scenario.after}",
                seconds=time.perf_counter() - started,
                ops=down.ops + up.ops,
                compared="after new-shape writes, then downgrade + upgrade (by row fingerprints)",
                diff=comparison.diff,
                rows=comparison.rows,
                losses=tuple(losses),
                problems=tuple(problems),
                notes=tuple(f"declared {name}: {n} row(s)" for name, n in expected.items()),
            )
        )

    def _judge_losses(
        self, comparison: Comparison, expected: dict[str, int], down_ops: Sequence[OpResult]
    ) -> tuple[list[LossCheck], list[str]]:
        declared: defaultdict[str, list[str]] = defaultdict(list)
        expected_by_table: defaultdict[str, int] = defaultdict(int)
        columns: defaultdict[str, list[str]] = defaultdict(list)
        for loss in self.scenario.declared_losses:
            declared[loss.table].append(loss.description or loss.name)
            expected_by_table[loss.table] += expected[loss.name]
            if loss.column:
                columns[loss.table].append(loss.column)
        reported = _reported_by_table(down_ops)
        found = {r.table: r for r in comparison.rows}
        checks: list[LossCheck] = []
        problems: list[str] = []
        for table in sorted(set(declared) | {t for t, r in found.items() if not r.ok}):
            changes = found.get(table)
            lost = changes.not_restored if changes else 0
            check = LossCheck(
                table=table,
                found=lost,
                declared=table in declared,
                expected=expected_by_table[table] if table in declared else 0,
                reported=reported.get(table),
                column=", ".join(columns[table]) or None,
                reason="; ".join(declared[table]),
            )
            checks.append(check)
            if not check.ok:
                problems.append(_loss_problem(check))
            if changes is not None and changes.unexpected > (lost if check.declared else 0):
                problems.append(
                    f"{table}: {changes.unexpected} row(s) after the round trip that were not "
                    "there before"
                )
        # Only operations of the toolkit count their losses; a hand-written revision says
        # nothing, and then only the independent count can be checked.
        counted = any("lost" in result.counts for result in down_ops)
        total_reported = op_totals(down_ops)["lost"]
        total_expected = sum(expected.values())
        if counted and total_reported != total_expected:
            problems.append(
                f"operations reported {total_reported} row(s) lost, "
                f"the declarations expect {total_expected}"
            )
        return checks, problems


def _reported_by_table(ops: Sequence[OpResult]) -> dict[str, int]:
    reported: defaultdict[str, int] = defaultdict(int)
    for result in ops:
        if "lost" in result.counts:
            reported[result.loss_table] += result.lost
    return dict(reported)


def _loss_problem(check: LossCheck) -> str:
    if not check.declared:
        return f"{check.table}: {check.found} row(s) did not come back, and no loss is declared"
    return (
        f"{check.where}: {check.found} row(s) did not come back, "
        f"the declared loss expects {check.expected}"
    )


def _failed(name: str, revision: str, seconds: float, error: str) -> StepReport:
    return StepReport(name=name, revision=revision, seconds=seconds, error=error)


def _table_counts(state: State) -> str:
    counts = ", ".join(f"{t.name} {t.rows}" for t in state.snapshot.tables)
    return f"rows: {counts}" if counts else "no tables"
