"""Data-preserving refactor operations, registered on Alembic's ``Operations``.

``import toolkit.ops`` (or Alembic's plugin entry point ``alembic.plugins``) makes them
available to any revision as ``op.<name>(...)``.
"""

from __future__ import annotations

from typing import Any

from toolkit.ops.results import OpResult, publish, recording

__all__ = ["OpResult", "publish", "recording", "setup"]


def setup(plugin: Any) -> None:
    """Alembic plugin hook: importing this package already registered the operations."""
    del plugin
