"""Find the bundled scenarios: ``scenarios/*.py`` files, each defining ``SCENARIO``.

In a checkout they sit beside ``toolkit/``; in an installed wheel they are packaged as
``toolkit/_bundled/scenarios`` (with ``revisions`` beside them), so the same relative
layout holds in both and scenario files can find their script directories from ``__file__``.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

from toolkit.errors import UsageError
from toolkit.scenario import Scenario


def bundled_root() -> Path:
    """The folder holding ``scenarios/`` and ``revisions/``."""
    package = Path(__file__).resolve().parent
    packaged = package / "_bundled"
    return packaged if (packaged / "scenarios").is_dir() else package.parent


def _load(path: Path) -> tuple[Scenario, ModuleType]:
    module_name = f"lossless_scenario_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load scenario file {path.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scenario = getattr(module, "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise UsageError(f"scenario file {path.name} defines no SCENARIO")
    return scenario, module


@cache
def _loaded() -> dict[str, tuple[Scenario, ModuleType]]:
    folder = bundled_root() / "scenarios"
    found = [_load(p) for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]
    return {s.name: (s, m) for s, m in sorted(found, key=lambda pair: pair[0].name)}


def all_scenarios() -> dict[str, Scenario]:
    """Every bundled scenario by name, sorted by name."""
    return {name: scenario for name, (scenario, _) in _loaded().items()}


def get_scenario(name: str) -> Scenario:
    """The bundled scenario called ``name``; ``UsageError`` listing the known ones otherwise."""
    return _lookup(name)[0]


def scenario_module(name: str) -> ModuleType:
    """The module defining bundled scenario ``name``, for its helpers.

    ``scenario_module("iteration-decoupling").plans_of_migration_query()`` works in a
    checkout and in an installed wheel alike (the scenario files are not a package).
    """
    return _lookup(name)[1]


def _lookup(name: str) -> tuple[Scenario, ModuleType]:
    loaded = _loaded()
    try:
        return loaded[name]
    except KeyError:
        known = ", ".join(loaded) or "none"
        raise UsageError(f"unknown scenario {name!r} (known: {known})") from None
