"""lint: squawk over each revision's offline SQL; review SQL that starts with the timeouts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import SCENARIO, assert_one_error, run_lossless
from toolkit.commands.lint import squawk_binary
from toolkit.sql.lint_notes import JUSTIFIED

BEFORE, AFTER = "e1a0c0de0013", "f06135d685df"


def _lint(project: Path, *args: str) -> tuple[int, dict[str, object]]:
    outcome = run_lossless("-c", str(project), "lint", "--json", *args)
    assert outcome.code in (0, 1), outcome
    return outcome.code, json.loads(outcome.out)


def _rules(report: dict[str, object]) -> dict[str, list[str]]:
    revisions = report["revisions"]
    assert isinstance(revisions, list)
    return {r["step"]: sorted({f["rule"] for f in r["findings"]}) for r in revisions}


def test_lint_reports_each_revisions_findings_and_exits_1(project: Path) -> None:
    code, report = _lint(project)

    assert code == 1
    assert _rules(report) == {
        "base -> a1": ["prefer-bigint-over-int", "prefer-identity", "prefer-robust-stmts"],
        "a1 -> b2": ["prefer-bigint-over-int", "prefer-identity"],
        "b2 -> c3": ["constraint-missing-not-valid", "disallowed-unique-constraint"],
        "c3 -> d4": [],
    }
    # the line is the line of `lossless sql` output holding the statement
    script = run_lossless("-c", str(project), "sql", "base:heads").out.splitlines()
    c3 = next(r for r in report["revisions"] if r["revision"] == "c3")  # type: ignore[attr-defined]
    for finding in c3["findings"]:
        assert "ADD CONSTRAINT uq_accounts_email UNIQUE" in script[finding["line"] - 1]
        assert finding["message"] and finding["help"]

    text = run_lossless("-c", str(project), "lint")
    assert text.code == 1, text
    assert "upgrade b2 -> c3: 2 finding(s)" in text.out
    assert "upgrade c3 -> d4: clean" in text.out
    assert "help: Create an index `CONCURRENTLY`" in text.out
    assert text.out.rstrip().endswith("8 finding(s) in 4 revision(s)")


def test_a_span_lints_only_its_revisions(project: Path) -> None:
    code, report = _lint(project, "c3:d4")
    assert (code, _rules(report)) == (0, {"c3 -> d4": []})

    # a team's own drops are reported: only the toolkit's statements carry exclusions
    down_code, down = _lint(project, "c3:a1")
    assert down_code == 1
    assert _rules(down) == {
        "c3 -> b2": ["ban-drop-column", "ban-drop-constraint"],
        "b2 -> a1": ["ban-drop-table"],
    }
    assert [r["revision"] for r in down["revisions"]] == ["c3", "b2"]  # type: ignore[attr-defined]


def test_exclusions_from_pyproject_alembic_ini_and_the_command_line(project: Path) -> None:
    (project.parent / "pyproject.toml").write_text(
        '[tool.lossless]\nlint-exclude = ["prefer-robust-stmts", '
        '"prefer-bigint-over-int", "prefer-identity"]\n'
    )
    project.write_text(
        project.read_text() + "\n[lossless]\nlint-exclude = constraint-missing-not-valid\n"
    )

    code, report = _lint(project)
    assert code == 1
    assert {step: rules for step, rules in _rules(report).items() if rules} == {
        "b2 -> c3": ["disallowed-unique-constraint"]
    }

    code, report = _lint(project, "--exclude", "disallowed-unique-constraint")
    assert (code, report["findings"], report["ok"]) == (0, 0, True)
    assert report["excluded"] == [
        "constraint-missing-not-valid",
        "disallowed-unique-constraint",
        "prefer-bigint-over-int",
        "prefer-identity",
        "prefer-robust-stmts",
    ]


def test_lint_usage_errors_exit_2(project: Path) -> None:
    assert_one_error(
        run_lossless("-c", str(project), "lint", "--exclude", "no-such-rule"),
        2,
        "squawk failed",
        "no-such-rule",
    )
    assert_one_error(run_lossless("-c", str(project), "lint", "zz:a1"), 2, "unknown revision")
    (project.parent / "pyproject.toml").write_text("[tool.lossless]\nlint-exclude = 'x'\n")
    assert_one_error(run_lossless("-c", str(project), "lint"), 2, "must be a list")


@pytest.mark.parametrize("span", [f"{BEFORE}:{AFTER}", f"{AFTER}:{BEFORE}"])
def test_the_toolkits_operations_are_clean_with_justified_exclusions(span: str) -> None:
    outcome = run_lossless("-s", SCENARIO, "lint", span, "--json")
    assert outcome.code == 0, outcome
    assert json.loads(outcome.out)["findings"] == 0

    # Clean because each excluded statement says why, not because squawk sees nothing:
    # without the notes, squawk reports exactly the justified rules.
    script = run_lossless("-s", SCENARIO, "sql", span).out
    notes = [line for line in script.splitlines() if line.startswith("-- squawk-ignore ")]
    assert notes
    bare = "\n".join(
        "" if line.startswith("-- squawk-ignore ") else line for line in script.splitlines()
    )
    done = subprocess.run(
        [squawk_binary(), "--reporter", "json"], input=bare, capture_output=True, text=True
    )
    found = {f["rule_name"] for f in json.loads(done.stdout)}
    assert found and found <= set(JUSTIFIED)
    noted = {rule.strip(",") for line in notes for rule in line.split(" -- ")[0].split()[2:]}
    assert found <= noted


def test_sql_starts_with_the_runs_timeouts(project: Path) -> None:
    default = run_lossless("-c", str(project), "sql", "base:a1")
    assert default.out.splitlines()[:2] == [
        "SET lock_timeout = '10000ms';",
        "SET statement_timeout = '1800000ms';",
    ]
    chosen = run_lossless(
        "--lock-timeout", "2s", "--statement-timeout", "5min", "-c", str(project), "sql", "a1:c3"
    )
    assert chosen.out.splitlines()[:2] == [
        "SET lock_timeout = '2000ms';",
        "SET statement_timeout = '300000ms';",
    ]
    env = run_lossless("-c", str(project), "sql", "a1:c3", env={"LOSSLESS_LOCK_TIMEOUT": "500ms"})
    assert env.out.splitlines()[0] == "SET lock_timeout = '500ms';"


def test_the_pytest_plugin_runs_lint_as_a_test(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini(f"[pytest]\nlossless_lint = true\nlossless_alembic_ini = {project}\n")

    failing = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    failing.assert_outcomes(failed=1)
    failing.stdout.fnmatch_lines(
        ["*upgrade b2 -> c3: 2 finding(s)*", "*disallowed-unique-constraint*"]
    )

    project.write_text(
        project.read_text() + "\n[lossless]\nlint-exclude = prefer-robust-stmts, "
        "prefer-bigint-over-int, prefer-identity, constraint-missing-not-valid, "
        "disallowed-unique-constraint\n"
    )
    passing = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    passing.assert_outcomes(passed=1)
    passing.stdout.fnmatch_lines(["*lossless_lint PASSED*"])
