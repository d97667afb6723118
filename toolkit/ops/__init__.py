"""Data-preserving refactor operations, registered on Alembic's ``Operations``.

``import toolkit.ops`` (or Alembic's plugin entry point ``alembic.plugins``) makes them
available to any revision as ``op.<name>(...)``:

- ``promote_fk_to_junction`` / ``collapse_junction_to_fk``
- ``stash_column_in_jsonb`` / ``restore_column_from_jsonb``
- ``move_fk_to_child`` / ``move_fk_to_parent``

Each returns (and publishes to ``recording()``) an ``OpResult`` with its counts.
``op.run_lossless(op_a, op_b, ...)`` runs several as one: every check before the first
change, every table lock taken first in one global order (``toolkit.ops.batch``).

An operation is a frozen dataclass (``toolkit.ops.base``) in a module named after it;
typed revisions import ``op`` from ``toolkit.op``.
"""

from __future__ import annotations

from typing import Any


def setup(plugin: Any) -> None:
    """Alembic plugin hook: importing this package registers the operations.

    Defined before the imports below: Alembic loads its plugins while it is itself being
    imported, so when ``import toolkit.ops`` comes first, Alembic calls back into this
    package while it is still initializing.
    """
    del plugin


from toolkit.ops.base import FROM_RECORD, LosslessOperation, Plan  # noqa: E402
from toolkit.ops.batch import LosslessBatchOp  # noqa: E402
from toolkit.ops.collapse_junction_to_fk import CollapseJunctionToFkOp  # noqa: E402
from toolkit.ops.move_fk_to_child import MoveFkToChildOp  # noqa: E402
from toolkit.ops.move_fk_to_parent import MoveFkToParentOp  # noqa: E402
from toolkit.ops.promote_fk_to_junction import PromoteFkToJunctionOp  # noqa: E402
from toolkit.ops.restore_column_from_jsonb import RestoreColumnFromJsonbOp  # noqa: E402
from toolkit.ops.results import OpResult, publish, recording  # noqa: E402
from toolkit.ops.stash_column_in_jsonb import StashColumnInJsonbOp  # noqa: E402
from toolkit.ops.steps import TableLock  # noqa: E402

#: The six operations, in the order of the documentation.
OPERATIONS: tuple[type[LosslessOperation], ...] = (
    PromoteFkToJunctionOp,
    CollapseJunctionToFkOp,
    StashColumnInJsonbOp,
    RestoreColumnFromJsonbOp,
    MoveFkToChildOp,
    MoveFkToParentOp,
)

__all__ = [
    "FROM_RECORD",
    "OPERATIONS",
    "CollapseJunctionToFkOp",
    "LosslessBatchOp",
    "LosslessOperation",
    "MoveFkToChildOp",
    "MoveFkToParentOp",
    "OpResult",
    "Plan",
    "PromoteFkToJunctionOp",
    "RestoreColumnFromJsonbOp",
    "StashColumnInJsonbOp",
    "TableLock",
    "publish",
    "recording",
    "setup",
]
