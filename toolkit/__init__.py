"""lossless: schema refactors on PostgreSQL that lose no data.

The import package is ``toolkit``; see ``toolkit.ops`` for the Alembic operations,
``toolkit.verify`` for snapshots and diffs, and ``toolkit.roundtrip`` for the verifier.
"""

from __future__ import annotations

__version__ = "0.1.0"
