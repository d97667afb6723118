"""Shell completion as docs/cli.md documents it: click's ``_LOSSLESS_COMPLETE`` protocol."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOSSLESS = Path(sys.executable).parent / "lossless"


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOSSLESS_", "_LOSSLESS"))}
    return subprocess.run(
        [str(LOSSLESS)], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_the_bash_source_is_a_completion_function_registered_for_lossless() -> None:
    done = run({"_LOSSLESS_COMPLETE": "bash_source"})

    assert done.returncode == 0, done.stderr
    assert "_lossless_completion() {" in done.stdout
    assert "complete -o nosort -F _lossless_completion lossless" in done.stdout


def test_the_completion_offers_the_commands() -> None:
    done = run(
        {"_LOSSLESS_COMPLETE": "bash_complete", "COMP_WORDS": "lossless sc", "COMP_CWORD": "1"}
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["plain,scenarios"]
