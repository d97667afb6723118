"""What a command runs against: the revisions (a bundled scenario or an alembic.ini) and
the server options, as plain data the CLI fills from its options and the environment."""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.bundled import all_scenarios, get_scenario
from toolkit.errors import UsageError
from toolkit.migrate import Project
from toolkit.scenario import Scenario

#: Defaults a DBA can live with on a busy server: a DDL statement that waits longer than
#: this for its table lock is cancelled rather than queueing every other query behind it.
DEFAULT_LOCK_TIMEOUT_S = 10.0
#: A single statement running longer than this is cancelled (0 turns the limit off).
DEFAULT_STATEMENT_TIMEOUT_S = 30 * 60.0


@dataclass(frozen=True)
class RunSettings:
    """The group options of a run.

    ``url`` names the database (``None``: the throwaway server ``postgres`` names,
    ``embedded`` by default, ``system[:V|BINDIR]`` or ``docker[:V]``). ``lock_timeout_s``
    bounds both the wait for the toolkit's migration lock and PostgreSQL's
    ``lock_timeout``; 0 disables a timeout.
    """

    url: str | None = None
    scenario: str | None = None
    config: str | None = None
    postgres: str | None = None
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
    #: How many times a revision whose table locks could not be had is tried again.
    lock_retries: int = 0

    def __post_init__(self) -> None:
        if self.url and self.postgres:
            raise UsageError("give either --url (LOSSLESS_URL) or --postgres, not both")
        if self.lock_timeout_s < 0 or self.statement_timeout_s < 0:
            raise UsageError("timeouts cannot be negative")
        if self.lock_retries < 0:
            raise UsageError("--lock-retries cannot be negative")


@dataclass(frozen=True)
class Target:
    """The revisions a command works with, and the scenario they come from (if bundled)."""

    project: Project
    scenario: Scenario | None = None

    @property
    def label(self) -> str:
        return self.project.label


def resolve_target(settings: RunSettings) -> Target:
    """The project named by ``--scenario`` or ``--config`` (exactly one of them)."""
    if settings.scenario and settings.config:
        raise UsageError("give either --scenario or --config, not both")
    if settings.scenario:
        scenario = get_scenario(settings.scenario)
        return Target(project=Project.for_scenario(scenario), scenario=scenario)
    if settings.config:
        return Target(project=Project.from_ini(settings.config))
    raise UsageError(
        "no revisions to work with: give --scenario NAME (see `lossless scenarios`) "
        "or --config path/to/alembic.ini"
    )


@dataclass(frozen=True)
class ScenarioInfo:
    """A bundled scenario as ``lossless scenarios`` lists it."""

    name: str
    before: str
    after: str
    description: str


def list_scenarios() -> tuple[ScenarioInfo, ...]:
    """Every bundled scenario, by name."""
    return tuple(
        ScenarioInfo(name=s.name, before=s.before, after=s.after, description=s.description)
        for s in all_scenarios().values()
    )
