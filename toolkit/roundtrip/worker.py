"""A worker process of a parallel project round trip: ``python -m toolkit.roundtrip.worker
JOB RESULT`` (see ``toolkit.roundtrip.parallel``)."""

from __future__ import annotations

import sys
from pathlib import Path

from toolkit.roundtrip.parallel import run_worker
from toolkit.roundtrip.project import checked_share

if __name__ == "__main__":
    run_worker(checked_share, Path(sys.argv[1]), Path(sys.argv[2]))
