"""The pytest plugin's built-in round-trip test, run in a separate pytest session (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.postgres import Server

PROJECTS = Path(__file__).resolve().parent.parent / "projects"


def run_inner(pytester: pytest.Pytester, server: Server, case: str, *args: str) -> pytest.RunResult:
    pytester.makeini(
        f"""
        [pytest]
        lossless_roundtrip = true
        lossless_alembic_ini = {PROJECTS / case / "alembic.ini"}
        lossless_roundtrip_rows = 6
        """
    )
    return pytester.runpytest_subprocess(
        "--lossless-url", server.url, "-p", "no:cacheprovider", *args
    )


def test_the_built_in_test_passes_on_a_faithful_project(
    pytester: pytest.Pytester, lossless_server: Server
) -> None:
    result = run_inner(pytester, lossless_server, "faithful", "-v")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*lossless_roundtrip PASSED*"])


def test_a_failure_shows_titled_sections(
    pytester: pytest.Pytester, lossless_server: Server
) -> None:
    result = run_inner(pytester, lossless_server, "forgot_copy_back")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*lossless round trip of project forgot_copy_back/alembic.ini: 1 of 2 step(s) failed*",
            "*- revision 0002_move_body (0001_initial -> 0002_move_body) -*",
            "problem: notes: * rows did not come back unchanged*column notes.body changed in *",
            "*column notes.body: * row(s) changed",
            "*- Captured lossless round trip call -*",
        ]
    )


def test_the_fixture_runs_any_project(pytester: pytest.Pytester, lossless_server: Server) -> None:
    pytester.makepyfile(
        f"""
        def test_mine(lossless_roundtrip):
            report = lossless_roundtrip({str(PROJECTS / "dropped_row" / "alembic.ini")!r}, rows=5)
            assert not report.ok
            assert [s.name for s in report.steps if not s.ok] == ["0006_tags_to_labels"]
        """
    )

    result = pytester.runpytest_subprocess("--lossless-url", lossless_server.url)

    result.assert_outcomes(passed=1)


def test_nothing_is_collected_unless_enabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")

    result = pytester.runpytest_subprocess("--collect-only", "-q")

    result.stdout.fnmatch_lines(["*test_plain*"])
    result.stdout.no_fnmatch_line("*lossless_roundtrip*")
