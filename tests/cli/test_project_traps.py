"""Real-world env.py files (tests/projects/): lossless works on the database it is given, or
refuses plainly; it never migrates another one.

Each trap is a small ``alembic init``-style project; see tests/projects/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from tests.cli.conftest import Outcome, assert_one_error, run_lossless
from toolkit.postgres import Server, scratch_database, sqlalchemy_url
from toolkit.postgres.url import database_name
from toolkit.verify import Snapshot, take_snapshot

PROJECTS = Path(__file__).resolve().parent.parent / "projects"
FAITHFUL_REVISIONS = [
    "0001_initial",
    "0002_move_body",
    "0003_metadata_table",
    "0004_author_name_index",
    "0005_rating_percent",
    "0006_tags_to_labels",
]


def ini(case: str) -> str:
    return str(PROJECTS / case / "alembic.ini")


@pytest.fixture
def app_database(lossless_server: Server) -> Iterator[str]:
    """The application's own database: a table with rows, which no command may touch."""
    with scratch_database(lossless_server.url, prefix="lossless_app") as url:
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE app_users (id int PRIMARY KEY, name text)"))
            conn.execute(text("INSERT INTO app_users VALUES (1, 'ada'), (2, 'grace')"))
        engine.dispose()
        yield url


def fingerprint(url: str) -> tuple[Snapshot, tuple[str, ...]]:
    """Structure, data fingerprints and the schemas of a database."""
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            schemas = conn.execute(
                text(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'"
                    " AND nspname <> 'information_schema' ORDER BY 1"
                )
            ).scalars()
            return take_snapshot(conn), tuple(schemas)
    finally:
        engine.dispose()


def tables(conn: Connection, schema: str = "public") -> list[str]:
    return sorted(inspect(conn).get_table_names(schema=schema))


APP_URL_CASES = ["app_url_from_env", "app_url_from_settings", "app_url_psycopg"]


@pytest.mark.parametrize("command", ["upgrade", "preflight", "roundtrip"])
@pytest.mark.parametrize("case", APP_URL_CASES)
def test_env_py_aimed_at_the_apps_database_is_refused(
    case: str, command: str, app_database: str, lossless_database: str, conn: Connection
) -> None:
    app = sqlalchemy_url(app_database).set(password="s3cret", host="localhost")
    app_url = app.render_as_string(hide_password=False)
    dsn = f"host=localhost port={app.port} dbname={app.database} user={app.username}"
    env = {"APP_DATABASE_URL": app_url, "APP_DATABASE_DSN": f"{dsn} password=s3cret"}
    before = fingerprint(app_database)

    outcome = run_lossless("-c", ini(case), "--url", lossless_database, command, env=env)

    line = assert_one_error(
        outcome, 2, f"{case}/env.py line", "tried to connect to postgresql://", "refused"
    )
    assert f"/{database_name(app_database)}: refused" in line
    assert "s3cret" not in outcome.out + outcome.err
    assert fingerprint(app_database) == before
    assert tables(conn) == []


def test_the_same_env_py_works_when_the_apps_url_is_the_one_given(
    app_database: str, lossless_database: str, conn: Connection
) -> None:
    """The same env.py is fine when the application's URL is the database given."""
    env = {"APP_DATABASE_URL": sqlalchemy_url(lossless_database).render_as_string(False)}

    outcome = run_lossless(
        "-c", ini("app_url_from_env"), "--url", lossless_database, "upgrade", env=env
    )

    assert outcome.code == 0, outcome
    assert tables(conn) == ["alembic_version", "authors", "notes", "tags"]


def test_an_exception_of_the_projects_settings_is_named(lossless_database: str) -> None:
    outcome = run_lossless(
        "-c", ini("app_url_from_settings"), "--url", lossless_database, "current"
    )

    line = assert_one_error(
        outcome,
        2,
        "app_url_from_settings/app_settings.py line",
        "app_url_from_settings/env.py",
        "SettingsError: APP_DATABASE_URL must be set to the application's database URL",
    )
    assert "unexpected error" not in line


def test_the_documented_connectable_env_py_runs_preflight_and_upgrade(
    lossless_database: str, conn: Connection
) -> None:
    preflight = run_lossless("-c", ini("connectable"), "--url", lossless_database, "preflight")

    assert preflight.code == 0, preflight
    assert "verdict: ok: would reach 0006_tags_to_labels" in preflight.out
    assert tables(conn) == []

    upgrade = run_lossless("-c", ini("connectable"), "--url", lossless_database, "upgrade")

    assert upgrade.code == 0, upgrade
    assert "labels" in tables(conn)
    assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
        "0006_tags_to_labels"
    )


def history_ids(outcome: Outcome) -> list[str]:
    return [line.split()[0] for line in outcome.out.splitlines()[2:] if line.strip()]


def test_versions_folder_set_by_env_py_at_run_time() -> None:
    outcome = run_lossless("-c", ini("runtime_versions"), "history")

    assert outcome.code == 0, outcome
    assert history_ids(outcome) == FAITHFUL_REVISIONS


@pytest.mark.parametrize("command", ["history", "roundtrip"])
def test_no_revisions_is_an_error(command: str, lossless_database: str) -> None:
    outcome = run_lossless("-c", ini("no_revisions"), "--url", lossless_database, command)

    assert_one_error(outcome, 2, "no revisions found", "no_revisions/versions")


def test_every_command_honours_the_version_table_env_py_configures(
    lossless_database: str, conn: Connection
) -> None:
    def run(*args: str) -> Outcome:
        return run_lossless("-c", ini("team_version"), "--url", lossless_database, *args)

    def version() -> list[str]:
        return list(conn.execute(text("SELECT version_num FROM meta.team_version")).scalars())

    assert history_ids(run("history")) == ["0001_initial", "0002_author_bio"]
    assert run("upgrade", "0001_initial").code == 0
    assert version() == ["0001_initial"]
    assert "alembic_version" not in tables(conn)
    current = run("current")
    assert current.out.startswith("0001_initial\n"), current

    upgraded = run("upgrade")

    assert "0001_initial -> 0002_author_bio" in upgraded.out, upgraded
    assert version() == ["0002_author_bio"]
    assert run("current").out.startswith("0002_author_bio (head)")
    before = fingerprint(lossless_database)
    preflight = run("preflight", "0001_initial")
    assert "preflight downgrade" in preflight.out, preflight
    assert "0002_author_bio -> 0001_initial" in preflight.out
    assert fingerprint(lossless_database) == before
    assert version() == ["0002_author_bio"]

    downgraded = run("downgrade", "0001_initial")

    assert downgraded.code == 0, downgraded
    assert version() == ["0001_initial"]
    assert "alembic_version" not in tables(conn)


def test_preflight_base_on_a_seeded_database_counts_what_it_drops(
    lossless_database: str, conn: Connection
) -> None:
    def run(*args: str) -> Outcome:
        return run_lossless("-c", ini("connectable"), "--url", lossless_database, *args)

    assert run("upgrade").code == 0
    assert run("seed", "--rows", "30").code == 0
    rows = {
        t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()  # noqa: S608
        for t in tables(conn)
        if t != "alembic_version"
    }
    assert all(rows.values()), rows
    before = fingerprint(lossless_database)

    outcome = run("preflight", "base")

    assert outcome.code == 1, outcome
    verdict = outcome.out.strip().splitlines()[-1]
    assert verdict.startswith("verdict: DATA WOULD BE DROPPED: ")
    for table, count in rows.items():
        assert f"table {table} dropped with {count} rows" in verdict
    assert "rolled back: the database is unchanged" in outcome.err
    assert fingerprint(lossless_database) == before
    machine = run("preflight", "base", "--json")
    assert machine.code == 1
    assert '"kind": "table"' in machine.out


def test_preflight_refuses_a_revision_that_commits(
    lossless_database: str, conn: Connection
) -> None:
    def run(*args: str) -> Outcome:
        return run_lossless("-c", ini("commits_midway"), "--url", lossless_database, *args)

    assert run("upgrade", "0001_initial").code == 0
    before = fingerprint(lossless_database)

    outcome = run("preflight")

    assert_one_error(
        outcome, 2, "0002_tag_name_index.py line 14 sends COMMIT", "nothing was committed"
    )
    assert fingerprint(lossless_database) == before
    assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
        "0001_initial"
    )


def test_roundtrip_exit_codes_follow_the_verdict(lossless_database: str, tmp_path: Path) -> None:
    untested = run_lossless(
        "-c", ini("untested_step"), "--url", lossless_database, "roundtrip", "--rows", "10"
    )

    assert untested.code == 1, untested
    assert "0 of 3 steps tested with data, 1 untested" in untested.out
    assert "UNTESTED  untested: codes had no rows" in untested.out

    allowed = tmp_path / "alembic.ini"
    allowed.write_text(
        (PROJECTS / "untested_step" / "alembic.ini")
        .read_text()
        .replace("%(here)s", str(PROJECTS / "untested_step"))
        + "\n[lossless]\nallow_untested_steps = true\n"
    )
    outcome = run_lossless(
        "-c", str(allowed), "--url", lossless_database, "roundtrip", "--rows", "10"
    )

    assert outcome.code == 0, outcome
    assert "1 untested (allowed by allow_untested_steps)" in outcome.out

    team = run_lossless("-c", ini("team_version"), "--url", lossless_database, "roundtrip")
    assert team.code == 0, team
    assert "1 of 2 steps tested with data" in team.out


def test_a_revision_that_raises_fails_the_upgrade_with_its_file_and_line(
    lossless_database: str,
) -> None:
    outcome = run_lossless("-c", ini("revision_raises"), "--url", lossless_database, "upgrade")

    assert_one_error(
        outcome,
        1,
        "revision 0002_batched_backfill failed in its own code",
        "0002_batched_backfill.py line 16 raised KeyError: 'BACKFILL_BATCH_SIZE'",
    )


def test_seed_leaves_a_version_table_of_its_own_name_alone(
    lossless_database: str, conn: Connection
) -> None:
    outcome = run_lossless(
        "-c", ini("public_version"), "--url", lossless_database, "seed", "--rows", "7", "--json"
    )
    assert outcome.code == 0, outcome
    assert "schema_versions" not in json.loads(outcome.out)["tables"]
    versions = conn.execute(text("SELECT version_num FROM schema_versions")).scalars()
    assert list(versions) == ["0002_author_bio"]
    assert conn.execute(text("SELECT count(*) FROM authors")).scalar() >= 7
