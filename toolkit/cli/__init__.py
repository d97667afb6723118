"""The ``lossless`` command line for DBAs: parse, call one ``toolkit.commands`` function, print.

``main`` is the console script's entry point (``lossless = "toolkit.cli:main"``).
"""

from __future__ import annotations

from toolkit.cli import migration, proofs, review
from toolkit.cli.app import cli, main

# In the order of a DBA's session: look, preview, act, prove.
for _command in (
    proofs.scenarios,
    migration.history,
    migration.current,
    migration.sql,
    review.lint,
    migration.preflight,
    migration.upgrade,
    migration.downgrade,
    proofs.seed,
    proofs.roundtrip,
    proofs.snapshot,
    proofs.diff,
):
    cli.add_command(_command)

__all__ = ["cli", "main"]
