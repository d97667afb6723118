"""Data-preserving refactor operations, registered on Alembic's ``Operations``.

``import toolkit.ops`` (or Alembic's plugin entry point ``alembic.plugins``) makes them
available to any revision as ``op.<name>(...)``:

- ``promote_fk_to_junction`` / ``collapse_junction_to_fk``
- ``stash_column_in_jsonb`` / ``restore_column_from_jsonb``
- ``move_fk_to_child`` / ``move_fk_to_parent``

Each returns (and publishes to ``recording()``) an ``OpResult`` with its counts.
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


from toolkit.ops.jsonb import RestoreColumnFromJsonbOp, StashColumnInJsonbOp  # noqa: E402
from toolkit.ops.junctions import CollapseJunctionToFkOp, PromoteFkToJunctionOp  # noqa: E402
from toolkit.ops.move import MoveFkToChildOp, MoveFkToParentOp  # noqa: E402
from toolkit.ops.results import OpResult, publish, recording  # noqa: E402

__all__ = [
    "CollapseJunctionToFkOp",
    "MoveFkToChildOp",
    "MoveFkToParentOp",
    "OpResult",
    "PromoteFkToJunctionOp",
    "RestoreColumnFromJsonbOp",
    "StashColumnInJsonbOp",
    "publish",
    "recording",
    "setup",
]
