"""A project that needs ``uuid-ossp``: a clear exit 2 on the embedded server (which lacks it),
a round trip on ``--postgres system`` (the PostgreSQL installed on the machine)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import assert_one_error, run_lossless

#: The PostgreSQL 15 of the CI machine (Debian's postgresql-15 package).
DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
NEEDS_UUID_OSSP = Path(__file__).resolve().parent.parent / "projects/needs_uuid_ossp/alembic.ini"


def test_the_embedded_server_says_which_extension_is_missing_and_the_ways_out() -> None:
    outcome = run_lossless("-c", str(NEEDS_UUID_OSSP), "upgrade")
    assert_one_error(
        outcome,
        2,
        'extension "uuid-ossp" is not available on this server',
        "the revisions of alembic.ini need it",
        "--postgres system",
        "--url",
        "--postgres docker",
    )
    assert "throwaway embedded server" in outcome.err


def test_the_same_project_round_trips_on_the_system_server() -> None:
    outcome = run_lossless("-c", str(NEEDS_UUID_OSSP), "--postgres", "system:15", "roundtrip")
    assert outcome.code == 0, outcome
    assert "round trip of project needs_uuid_ossp/alembic.ini: OK" in outcome.out
    assert f"throwaway server from {DEBIAN_15}" in outcome.err
    steps = [line.split()[:2] for line in outcome.out.splitlines() if line.startswith("000")]
    assert steps == [["0001_accounts", "base"], ["0002_api_keys", "0001_accounts"]]
    assert "seeded 200 rows in 1 table: accounts 200" in outcome.out


def test_the_environment_names_the_system_server() -> None:
    outcome = run_lossless(
        "-c", str(NEEDS_UUID_OSSP), "current", env={"LOSSLESS_POSTGRES": f"system:{DEBIAN_15}"}
    )
    assert outcome.code == 0, outcome
    assert f"throwaway server from {DEBIAN_15}" in outcome.err
