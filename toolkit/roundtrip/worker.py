"""A worker process of a parallel project round trip: ``python -m toolkit.roundtrip.worker
JOB RESULT`` (see ``toolkit.roundtrip.parallel``).

Whatever the project's code prints goes to stderr, as the CLI does with it: the caller's
stdout carries only its own results (``--json``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from toolkit.roundtrip.parallel import run_worker
from toolkit.roundtrip.project import checked_share

if __name__ == "__main__":
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    run_worker(checked_share, Path(sys.argv[1]), Path(sys.argv[2]))
