"""The round trip of any team's Alembic project, one revision step at a time.

For each revision: a scratch database at the revision's parent(s), synthetic rows in
every table (``toolkit.seeding``), S0, upgrade one step, downgrade one step, S2 == S0.
Differences are problems unless the project's settings allow that revision to lose that
table's (or column's) data, with a reason the report shows.

A "ladder" database follows the history without data; each step clones it (``CREATE
DATABASE ... TEMPLATE``) when it stands exactly at the step's parents, so a linear history
of n revisions costs n migrations, not n²; otherwise (branches) the step's database is
migrated from scratch.

With ``template`` (a database on the same server, e.g. a copy of production), one clone of
it is used instead, and only the revisions it has not applied yet are checked, in order,
on its real data (plus synthetic rows when ``rows`` > 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from toolkit import migrate
from toolkit.migrate import Project, RevisionInfo, VersionTable
from toolkit.postgres.url import database_name
from toolkit.roundtrip.hooks import When, hooks_for_step, run_hooks
from toolkit.roundtrip.judge import judge
from toolkit.roundtrip.parallel import Claim, default_jobs, every_step, in_processes
from toolkit.roundtrip.report import RoundTripReport, StepReport
from toolkit.roundtrip.scratch import Scratch, ScratchDatabases
from toolkit.roundtrip.settings import RoundTripSettings, load_settings
from toolkit.roundtrip.steps import (
    Comparison,
    Migration,
    capture_state,
    compare_states,
    run_migration,
    server_label,
    untested_tables,
    version_mismatch,
)
from toolkit.roundtrip.touched import changed_tables
from toolkit.seeding import empty_tables, seed_database, table_names
from toolkit.verify import Snapshot, SnapshotDiff, diff

STEP_PREFIX = "lossless_roundtrip"
NOT_REPEATABLE = (
    "the step's first run from the same start differed from its second: its outcome "
    "is not repeatable; the differences shown are the first run's"
)


def run_project_roundtrip(
    project: Project,
    server_url: str,
    *,
    rows: int = 20,
    seed: int = 0,
    settings: RoundTripSettings | None = None,
    template: str | None = None,
    keep: bool = False,
    jobs: int | None = None,
) -> RoundTripReport:
    """Upgrade and downgrade every revision of ``project`` on seeded data; report losses.

    Works in scratch databases on the server ``server_url`` points at (never in the
    database it names), dropped afterwards unless ``keep``. ``settings`` default to
    ``load_settings(project)``. With ``template``, checks the revisions a clone of that
    database has not applied yet, on its data. Otherwise the steps are shared out between
    ``jobs`` processes (default: ``default_jobs``, 2 for a project of 12 revisions or more
    on a machine with 2 CPUs); the report is the same.
    """
    started = time.perf_counter()
    settings = settings if settings is not None else load_settings(project)
    job = LadderJob(project, server_url, settings, rows=rows, seed=seed, keep=keep)
    revisions = migrate.history(project)
    jobs = jobs if jobs is not None else default_jobs(len(revisions))
    if template is not None:
        done: list[Checked] = [_on_clone(job, template)]
    # A Python data hook is a function of the team's: it is not sent to other processes.
    elif jobs > 1 and not any(h.function is not None for h in settings.data_hooks):
        done = in_processes(job, jobs=jobs, revisions=len(revisions))
    else:
        done = [checked_share(job)]
    order = {info.revision: n for n, info in enumerate(revisions)}
    steps = sorted((s for d in done for s in d.steps), key=lambda s: order.get(s.name, -1))
    notes = [f"settings from {', '.join(settings.sources)}"] if settings.sources else []
    notes += [n for d in done for n in d.notes]
    notes += [f"kept scratch database {name}" for d in done for name in d.kept]
    return RoundTripReport(
        subject=_subject(project),
        kind="project",
        server=next((d.server for d in done if d.server), server_url),
        rows=rows,
        seed=seed,
        steps=tuple(steps),
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
        allow_untested=settings.allow_untested_steps,
    )


@dataclass(frozen=True)
class LadderJob:
    """What a process needs to check steps of a project (picklable)."""

    project: Project
    server_url: str
    settings: RoundTripSettings
    rows: int
    seed: int
    keep: bool


@dataclass(frozen=True)
class Checked:
    """What a process checked: its steps, the server it saw, notes, databases it kept."""

    steps: tuple[StepReport, ...]
    server: str
    notes: tuple[str, ...]
    kept: tuple[str, ...]


def checked_share(job: LadderJob, claim: Claim = every_step) -> Checked:
    """The steps of the revisions ``claim`` gives this process (all of them by default)."""
    return _run(job, lambda run: run.on_ladder(claim))


def _on_clone(job: LadderJob, template: str) -> Checked:
    return _run(job, lambda run: run.on_clone(template))


def _run(job: LadderJob, steps: Callable[[_ProjectRun], list[StepReport]]) -> Checked:
    with ScratchDatabases(job.server_url, keep=job.keep) as databases:
        run = _ProjectRun(job.project, databases, job.settings, rows=job.rows, seed=job.seed)
        found = steps(run)
    return Checked(tuple(found), run.server, tuple(run.notes), tuple(databases.kept))


class _ProjectRun:
    def __init__(
        self,
        project: Project,
        databases: ScratchDatabases,
        settings: RoundTripSettings,
        *,
        rows: int,
        seed: int,
    ) -> None:
        self.project = project
        self.databases = databases
        self.settings = settings
        self.rows = rows
        self.seed = seed
        self.server = ""
        self.notes: list[str] = []
        self.version_table = VersionTable()

    def on_ladder(self, claim: Claim = every_step) -> list[StepReport]:
        """Every revision (that this process ``claim``s), each in its own scratch database
        at the revision's parents."""
        steps: list[StepReport] = []
        revisions = migrate.history(self.project)
        ladder = self.databases.create("lossless_ladder")
        try:
            at = migrate.position(self.project, ladder)
            heads, self.version_table = at.heads, at.table
            blocked: str | None = None
            for index, info in enumerate(revisions):
                mine = claim(index)
                if mine is None:
                    break
                if blocked is not None:
                    if mine:
                        reason = f"its ancestor {blocked} could not be upgraded"
                        steps.append(_skipped(info, reason))
                    continue
                if not mine:
                    pass  # another process checks it; the ladder still goes through it
                elif info.revision in self.settings.exclude_revisions:
                    steps.append(_skipped(info, "excluded by configuration"))
                else:
                    at_parents = set(heads) == set(info.down_revision)
                    steps.append(self._fresh_step(info, ladder if at_parents else None))
                if run_migration("upgrade", self.project, ladder, info.revision).error:
                    blocked = info.revision
                heads = migrate.current(self.project, ladder)
        finally:
            self.databases.release(ladder)
        return steps

    def on_clone(self, template: str) -> list[StepReport]:
        """The revisions a clone of ``template`` has not applied, in order, on its data."""
        steps: list[StepReport] = []
        revisions = migrate.history(self.project)
        with self.databases.connected(STEP_PREFIX, template=template) as db:
            self._note_db(db)
            at = migrate.position(self.project, db.url)
            self.version_table = at.table
            applied = _applied(self.project, at.heads)
            pending = [i for i in revisions if i.revision not in applied]
            if not pending:
                self.notes.append(f"database {template!r} has applied every revision")
                return steps
            seeding = self._seed(db)
            seen = set(table_names(db.conn))
            blocked: str | None = None
            failed_hook: str | None = None
            for info in pending:
                if blocked is not None:
                    steps.append(_skipped(info, f"its ancestor {blocked} could not be upgraded"))
                    continue
                if info.revision in self.settings.exclude_revisions:
                    steps.append(_skipped(info, "excluded by configuration"))
                elif failed_hook is not None:
                    steps.append(_error(info, time.perf_counter(), failed_hook, seeding))
                else:
                    steps.append(_judged(self._data_then_check(db, info, seeding, "before")))
                seeding, failed_hook = [], None
                if run_migration("upgrade", self.project, db.url, info.revision).error:
                    blocked = info.revision
                    continue
                # Tables this revision created are seeded now: later steps can lose their rows.
                new = set(table_names(db.conn)) - seen
                seen |= new
                seeding = self._seed(db, skip=seen - set(empty_tables(db.conn, new)))
                after = [h for h in self.settings.data_hooks if h.when == "after"]
                ran, failed_hook = run_hooks(hooks_for_step(after, "", [info.revision]), db.url)
                seeding += ran
        return steps

    def _fresh_step(self, info: RevisionInfo, ladder: str | None) -> StepReport:
        """The step on fingerprints; if they differ, once more from the same start with
        the rows copied aside, to name the rows and columns behind the difference."""
        started = time.perf_counter()
        quick = self._step_in_scratch(info, ladder, started, keep_rows=False)
        if isinstance(quick, StepReport):
            return quick
        return _judged(self._step_in_scratch(info, ladder, started, first_run=quick))

    def _step_in_scratch(
        self,
        info: RevisionInfo,
        ladder: str | None,
        started: float,
        *,
        keep_rows: bool = True,
        first_run: SnapshotDiff | None = None,
    ) -> StepReport | SnapshotDiff:
        """One run of the step in a new database at the revision's parents (a clone of the
        ``ladder`` when it stands there), seeded, with the step's data hooks."""
        template = database_name(ladder) if ladder is not None else None
        with self.databases.connected(STEP_PREFIX, template=template) as db:
            self._note_db(db)
            if template is None:
                for parent in info.down_revision:
                    reached = run_migration("upgrade", self.project, db.url, parent)
                    if reached.error is not None:
                        error = f"upgrade to parent {parent}: {reached.error}"
                        return _error(info, started, error)
            seeding = self._seed(db)
            return self._data_then_check(
                db,
                info,
                seeding,
                "before",
                "after",
                started=started,
                keep_rows=keep_rows,
                first_run=first_run,
            )

    def _seed(self, db: Scratch, *, skip: set[str] | None = None) -> list[str]:
        """Synthetic rows in every table (but those in ``skip``, e.g. seeded before)."""
        if self.rows <= 0:
            return ["no synthetic rows (rows=0)"] if skip is None else []
        excluded = (*self.excluded_tables, *(skip or ()))
        seeded = seed_database(db.conn, rows=self.rows, seed=self.seed, exclude_tables=excluded)
        if not seeded.tables:
            return ["no table to seed"] if skip is None else []
        return [f"seeded {seeded.summary()}", *seeded.notes]

    def _data_then_check(
        self,
        db: Scratch,
        info: RevisionInfo,
        notes: list[str],
        *moments: When,
        started: float | None = None,
        keep_rows: bool = True,
        first_run: SnapshotDiff | None = None,
    ) -> StepReport | SnapshotDiff:
        """Run the team's data hooks for this step (``moments``), then ``_check``."""
        started = time.perf_counter() if started is None else started
        hooks = [
            h
            for h in hooks_for_step(self.settings.data_hooks, info.revision, info.down_revision)
            if h.when in moments
        ]
        ran, error = run_hooks(hooks, db.url)
        if error is not None:
            return _error(info, started, error, [*notes, *ran])
        return self._check(
            db, info, started, [*notes, *ran], keep_rows=keep_rows, first_run=first_run
        )

    def _check(
        self,
        db: Scratch,
        info: RevisionInfo,
        started: float,
        notes: list[str],
        *,
        keep_rows: bool = True,
        first_run: SnapshotDiff | None = None,
    ) -> StepReport | SnapshotDiff:
        """S0, upgrade one step, downgrade one step, S2, compare, judge.

        After each migration the version table must say what it reached; the tables the
        step changes must have had rows, else the step is untested.

        Without ``keep_rows``, S0 copies no rows aside: when S2's snapshot differs from
        S0's in some table, that diff is returned instead of a report, for a second run
        from the same start (``first_run``) that keeps the rows and names those that differ.
        """
        s0 = capture_state(db.conn, "s0", keep_rows=keep_rows, exclude_tables=self.excluded_tables)
        up = run_migration("upgrade", self.project, db.url, info.revision)
        error = up.error or self._version_error(db, "upgrade", (info.revision,))
        if error is not None:
            return _error(info, started, f"upgrade: {error}", notes)
        down_to = info.down_revision[0] if info.down_revision else "base"
        down = run_migration("downgrade", self.project, db.url, down_to)
        error = down.error or self._version_error(db, "downgrade", info.down_revision)
        if error is not None:
            return _error(info, started, f"downgrade: {error}", notes)
        s2 = capture_state(db.conn, "s2", keep_rows=False, exclude_tables=self.excluded_tables)
        if not keep_rows:
            found = diff(s0.snapshot, s2.snapshot)
            if found.tables():
                return found
            comparison = Comparison(found, ())
        else:
            comparison = compare_states(db.conn, s0, s2)
            if first_run is not None and not comparison.diff.tables():
                # The first run differed, this one did not: the step does not always do
                # the same thing. What the first run measured stands.
                comparison = Comparison(first_run, ())
                notes = [*notes, NOT_REPEATABLE]
        losses, problems = judge(comparison, self.settings.allowances(info.revision))
        changed, untested = self._coverage(s0.snapshot, up, down)
        return StepReport(
            name=info.revision,
            revision=_span(info),
            seconds=time.perf_counter() - started,
            ops=up.ops + down.ops,
            compared="after upgrade + downgrade with before",
            diff=comparison.diff,
            rows=comparison.rows,
            losses=tuple(losses),
            problems=tuple(problems),
            notes=tuple(notes),
            changed_tables=tuple(sorted(changed)),
            untested=tuple(untested),
        )

    @property
    def excluded_tables(self) -> tuple[str, ...]:
        """The version table(s): not data, never seeded nor compared."""
        return self.version_table.excluded_tables()

    def _version_error(self, db: Scratch, step: str, expected: tuple[str, ...]) -> str | None:
        at = migrate.position(self.project, db.url)
        return version_mismatch(at, step, expected)

    def _coverage(
        self, start: Snapshot, up: Migration, down: Migration
    ) -> tuple[set[str], list[str]]:
        """Tables with rows at the start that the step changed; why it is untested, if so."""
        changed = changed_tables(up.statements + down.statements) - set(self.excluded_tables)
        return untested_tables(start, changed)

    def _note_db(self, db: Scratch) -> None:
        self.server = self.server or server_label(self.databases.server_url, db.conn)


def _judged(result: StepReport | SnapshotDiff) -> StepReport:
    """The report of a step run that kept S0's rows (such a run always judges)."""
    if isinstance(result, SnapshotDiff):
        raise AssertionError("a step run that keeps its rows returns a report")
    return result


def _applied(project: Project, heads: tuple[str, ...]) -> set[str]:
    if not heads:
        return set()
    script = project.script()
    return {r.revision for r in script.iterate_revisions(heads, "base")}


def _subject(project: Project) -> str:
    if project.ini_path is None:
        return project.label
    return f"{project.ini_path.parent.name}/{project.ini_path.name}"


def _span(info: RevisionInfo) -> str:
    parents = ", ".join(info.down_revision) or "base"
    return f"{parents} -> {info.revision}"


def _skipped(info: RevisionInfo, reason: str) -> StepReport:
    return StepReport(name=info.revision, revision=_span(info), skipped=reason)


def _error(
    info: RevisionInfo, started: float, error: str, notes: list[str] | None = None
) -> StepReport:
    return StepReport(
        name=info.revision,
        revision=_span(info),
        seconds=time.perf_counter() - started,
        error=error,
        notes=tuple(notes or ()),
    )
