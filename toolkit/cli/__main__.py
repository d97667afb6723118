"""``python -m toolkit.cli``: the same as the ``lossless`` console script."""

from __future__ import annotations

import sys

from toolkit.cli import main

sys.exit(main())
