"""The plugin's ini options as people write them: with inline comments, or wrong."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

from toolkit.postgres import Server

FAITHFUL = Path(__file__).resolve().parents[1] / "projects" / "faithful" / "alembic.ini"


def test_inline_comments_in_the_ini_values_are_not_part_of_them(
    pytester: pytest.Pytester, lossless_server: Server
) -> None:
    pytester.makeini(
        f"""
        [pytest]
        lossless_roundtrip = true              # the built-in test
        lossless_alembic_ini = {FAITHFUL}      # relative to the rootdir (default alembic.ini)
        lossless_roundtrip_rows = 3            ; rows per table
        """
    )
    result = pytester.runpytest_subprocess(
        "--lossless-url", lossless_server.url, "-p", "no:cacheprovider", "-rA"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*3 rows per table*"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("lossless_roundtrip_rows = twenty", "lossless_roundtrip_rows: expected a whole number*"),
        ("lossless_roundtrip = sure", "lossless_roundtrip: expected true or false, got 'sure'"),
    ],
)
def test_a_bad_ini_value_is_named_in_one_line(
    pytester: pytest.Pytester, lossless_server: Server, line: str, message: str
) -> None:
    enabled = "" if line.startswith("lossless_roundtrip =") else "lossless_roundtrip = true"
    pytester.makeini(f"[pytest]\n{enabled}\nlossless_alembic_ini = {FAITHFUL}\n{line}\n")
    result = pytester.runpytest_subprocess("--lossless-url", lossless_server.url)
    assert result.ret != 0
    output = result.stdout.lines + result.stderr.lines
    assert any(fnmatch(text, f"*{message}*") for text in output), output
    assert "Traceback" not in "\n".join(output)
