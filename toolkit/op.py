"""``op`` for revisions: Alembic's ``op``, with the toolkit's operations registered.

``from toolkit.op import op`` instead of ``from alembic import op`` in a revision: the same
object at run time, and ``mypy --strict`` knows ``op.promote_fk_to_junction(...)``,
``op.run_lossless(...)`` and their arguments (``toolkit/op.pyi``, generated from the
operations' dataclasses by ``python -m toolkit.ops.stubs``).
"""

from __future__ import annotations

from alembic import op

import toolkit.ops  # noqa: F401  (registers the operations on Alembic's Operations)

__all__ = ["op"]
