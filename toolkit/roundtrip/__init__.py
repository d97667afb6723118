"""The round-trip verifier: prove on a scratch database that a migration loses nothing.

``run_scenario_roundtrip(scenario, server_url)`` runs a bundled scenario's full round trip
(with invariants, volatile columns and the new-shape leg); ``run_project_roundtrip(project,
server_url)`` runs every revision step of any team's Alembic project on synthetic data.
Both return a ``RoundTripReport`` (``.ok``, ``.render()``, ``.to_json()``).
"""

from __future__ import annotations

from toolkit.roundtrip.project import run_project_roundtrip
from toolkit.roundtrip.report import (
    InvariantResult,
    LossCheck,
    RoundTripReport,
    StepReport,
)
from toolkit.roundtrip.scenario_run import run_scenario_roundtrip
from toolkit.roundtrip.settings import AllowedLoss, RoundTripSettings, load_settings

__all__ = [
    "AllowedLoss",
    "InvariantResult",
    "LossCheck",
    "RoundTripReport",
    "RoundTripSettings",
    "StepReport",
    "load_settings",
    "run_project_roundtrip",
    "run_scenario_roundtrip",
]
