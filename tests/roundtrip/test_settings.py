"""Round-trip settings from pyproject.toml [tool.lossless] and alembic.ini [lossless]."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.errors import UsageError
from toolkit.migrate import Project
from toolkit.roundtrip import AllowedLoss, RoundTripSettings, load_settings

PROJECTS = Path(__file__).resolve().parent.parent / "projects"
FAITHFUL_VERSIONS = PROJECTS / "faithful" / "migrations"


def make_project(folder: Path, *, ini_extra: str = "", pyproject: str | None = None) -> Project:
    """A project in ``folder`` over the faithful revisions, with settings where asked."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alembic.ini").write_text(
        f"[alembic]\nscript_location = {FAITHFUL_VERSIONS}\n"
        f"recursive_version_locations = true\n{ini_extra}"
    )
    if pyproject is not None:
        (folder.parent / "pyproject.toml").write_text(pyproject)
    return Project.from_ini(folder / "alembic.ini")


def test_no_settings_anywhere(tmp_path: Path) -> None:
    assert load_settings(make_project(tmp_path / "db")) == RoundTripSettings()


def test_a_scenario_project_has_no_settings() -> None:
    assert load_settings(Project(label="x", script_location=FAITHFUL_VERSIONS)).sources == ()


def test_pyproject_in_a_parent_folder(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "db",
        pyproject="""
[tool.other]
x = 1

[tool.lossless]
exclude_revisions = ["0006_tags_to_labels"]

[[tool.lossless.allowed_losses]]
revision = "0002"
table = "notes"
column = "body"
reason = "archived"

[[tool.lossless.allowed_losses]]
revision = "0005_rating_percent"
table = "notes"
reason = "ratings are recomputed nightly"
""",
    )

    settings = load_settings(project)
    assert settings.exclude_revisions == frozenset({"0006_tags_to_labels"})
    assert settings.allowed_losses == (
        AllowedLoss("0002_move_body", "notes", "archived", "body"),
        AllowedLoss("0005_rating_percent", "notes", "ratings are recomputed nightly"),
    )
    assert settings.sources == ("pyproject.toml [tool.lossless]",)
    assert settings.allowances("0002_move_body")[0].covers("notes", "body")
    assert not settings.allowances("0002_move_body")[0].covers("notes", "title")
    assert settings.allowances("0005_rating_percent")[0].covers("notes", "anything")


def test_alembic_ini_section_adds_to_pyproject(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "db",
        ini_extra=(
            "\n[lossless]\nexclude_revisions = 0003_metadata_table, 0004_author_name_index\n"
            "allowed_losses =\n"
            "    0002_move_body notes.body: moved to cold storage\n"
            "    0006_tags_to_labels tags: tags are rebuilt from labels: see ADR 7\n"
        ),
        pyproject='[tool.lossless]\nexclude_revisions = ["0005_rating_percent"]\n',
    )

    settings = load_settings(project)
    assert settings.exclude_revisions == frozenset(
        {"0003_metadata_table", "0004_author_name_index", "0005_rating_percent"}
    )
    assert settings.allowed_losses == (
        AllowedLoss("0002_move_body", "notes", "moved to cold storage", "body"),
        AllowedLoss("0006_tags_to_labels", "tags", "tags are rebuilt from labels: see ADR 7"),
    )
    assert settings.sources == ("pyproject.toml [tool.lossless]", "alembic.ini [lossless]")


@pytest.mark.parametrize(
    ("ini_extra", "pyproject", "message"),
    [
        ("", "[[tool.lossless.allowed_losses]]\nrevision = '0002'\ntable = 'notes'\n", "reason"),
        ("", "[tool.lossless]\nexclude_revisions = '0002'\n", "list of revision ids"),
        ("", "[tool.lossless]\nexclude_revisions = ['nope']\n", "unknown revision 'nope'"),
        ("", "[tool.lossless\n", "not valid TOML"),
        ("\n[lossless]\nallowed_losses = 0002_move_body notes.body\n", None, "REVISION TABLE"),
    ],
)
def test_bad_settings_are_usage_errors(
    tmp_path: Path, ini_extra: str, pyproject: str | None, message: str
) -> None:
    project = make_project(tmp_path / "db", ini_extra=ini_extra, pyproject=pyproject)

    with pytest.raises(UsageError, match=message):
        load_settings(project)
