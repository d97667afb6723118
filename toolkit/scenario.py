"""The scenario definition API, used by the files under ``scenarios/``.

A scenario bundles an Alembic script directory with what it takes to prove a refactor
loses nothing: a deterministic seed, invariants that must hold after the upgrade, the
losses the downgrade declares, the columns that legitimately change on a re-upgrade, and
the "new shape" writer that creates data only the post-refactor schema allows.
Pure data: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

#: ``seed(conn, rows, seed)``: fill the pre-refactor schema, deterministically, set-based.
Seeder = Callable[[Connection, int, int], None]
#: ``write(conn, seed)``: after the upgrade, write data only the new schema can hold.
NewShapeWriter = Callable[[Connection, int], None]


@dataclass(frozen=True)
class Invariant:
    """A fact that must hold after the upgrade.

    ``sql`` selects the violating rows (first column: a key to show); no row means it holds.
    """

    name: str
    sql: str


@dataclass(frozen=True)
class DeclaredLoss:
    """A loss the downgrade declares and a report must show as declared, not hidden.

    ``expected_sql`` runs on the post-refactor database right before the downgrade and
    returns one integer: how many rows of ``table`` will not come back unchanged after
    downgrade + upgrade. The verifier counts the actual loss independently (row fingerprints)
    and compares, and also checks the operations reported the same number as ``lost``.
    """

    name: str
    table: str
    expected_sql: str
    column: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Scenario:
    """A reference refactor: its revisions and what proves it loses nothing undeclared."""

    name: str
    description: str
    script_location: Path
    before: str
    after: str
    seed: Seeder
    invariants: tuple[Invariant, ...] = ()
    declared_losses: tuple[DeclaredLoss, ...] = ()
    #: table -> columns excluded from equality after a re-upgrade (regenerated ids, now()).
    volatile_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    new_shape: NewShapeWriter | None = None
