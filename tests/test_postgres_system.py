"""``--postgres system``: a throwaway server from the PostgreSQL installed on the machine, and
the clear error when a revision needs an extension the server lacks."""

from __future__ import annotations

import os
import pwd
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.test_postgres import pid_alive
from toolkit.errors import MissingExtensionError, ProvisioningError, UsageError
from toolkit.postgres import postgres_kind, provision
from toolkit.postgres.system import PATTERNS, discover, find_installation, parse_system_spec
from toolkit.postgres.unprivileged import RUN_AS

#: The PostgreSQL 15 of the CI machine (Debian's postgresql-15 package).
DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
PROJECTS = Path(__file__).resolve().parent / "projects"
NEEDS_UUID_OSSP = PROJECTS / "needs_uuid_ossp" / "alembic.ini"


def _owner_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
    return int(line.split()[1])


def test_system_server_from_a_bin_directory_has_uuid_ossp() -> None:
    with provision(postgres=f"system:{DEBIAN_15}", env=False) as server:
        assert (server.kind, server.origin) == ("system", str(DEBIAN_15))
        assert server.version.split(".")[0] == "15"
        assert f"throwaway server from {DEBIAN_15} at" in server.describe()
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute('CREATE EXTENSION "uuid-ossp"')
            conn.execute("CREATE EXTENSION pgcrypto")
            row = conn.execute(
                "SELECT uuid_generate_v4(), encode(digest('abc', 'sha256'), 'hex'), "
                "current_setting('data_directory'), current_setting('fsync')"
            ).fetchone()
            assert row is not None
            data_dir = Path(str(row[2]))
            pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
            owner = _owner_uid(pid)
        assert isinstance(row[0], uuid.UUID)
        assert row[0].version == 4
        assert row[1] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        assert row[3] == "off"
        expected = pwd.getpwnam(RUN_AS).pw_uid if os.geteuid() == 0 else os.getuid()
        assert owner == expected
    assert not data_dir.parent.exists(), "temporary directory left behind"
    assert not pid_alive(pid), "server still running"


def test_discovery_finds_the_installed_major_versions() -> None:
    found = discover()
    assert DEBIAN_15 in [i.bindir for i in found]
    assert [i.key for i in found] == sorted((i.key for i in found), reverse=True)
    assert find_installation("system:15").bindir == DEBIAN_15
    assert find_installation("system:15").version.startswith("15.")
    assert find_installation("system").key == found[0].key


def test_a_missing_major_version_names_what_was_found_and_where() -> None:
    with pytest.raises(ProvisioningError) as info:
        find_installation("system:99")
    message = str(info.value)
    assert "no PostgreSQL 99 binaries found" in message
    assert f"found: {find_installation('system:15').version} in {DEBIAN_15}" in message
    for place in PATTERNS:
        assert place in message


def test_no_binaries_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    pattern = str(tmp_path / "pg-*" / "bin")
    (tmp_path / "pg-1" / "bin").mkdir(parents=True)  # a directory without the programs
    with pytest.raises(ProvisioningError) as info:
        find_installation("system", patterns=(pattern,))
    assert str(info.value).startswith(
        f"no PostgreSQL binaries found (searched: pg_config --bindir; postgres on the PATH; "
        f"{pattern}); install PostgreSQL"
    )
    assert "--url" in str(info.value)


def test_a_bin_directory_without_the_programs(tmp_path: Path) -> None:
    (tmp_path / "initdb").write_text("")
    with pytest.raises(ProvisioningError, match=r"not a PostgreSQL bin directory \(no initdb, "):
        find_installation(f"system:{tmp_path}")


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [("system", None), ("system:", None), ("system:15", 15), ("system:/opt/pg/bin", "/opt/pg/bin")],
)
def test_system_specs(spec: str, wanted: object) -> None:
    parsed = parse_system_spec(spec)
    assert (str(parsed) if isinstance(parsed, Path) else parsed) == wanted
    assert postgres_kind(spec) == "system"


@pytest.mark.parametrize("spec", ["system:fifteen", "podman", "embedded:18", "systemd"])
def test_bad_postgres_values(spec: str) -> None:
    with pytest.raises(UsageError), provision(postgres=spec, env=False):
        pass  # pragma: no cover - refused before any server starts


@pytest.mark.parametrize(
    ("message", "extension"),
    [
        ('extension "uuid-ossp" is not available', "uuid-ossp"),
        (
            'could not open extension control file "/usr/share/postgresql/14/extension/'
            'postgis.control": No such file or directory',
            "postgis",
        ),
        ('relation "uuid-ossp" does not exist', None),
    ],
)
def test_missing_extension_is_recognised(message: str, extension: str | None) -> None:
    assert MissingExtensionError.named_in(message) == extension


def test_pytest_option_and_ini_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(
        f"""
        [pytest]
        lossless_roundtrip = true
        lossless_alembic_ini = {NEEDS_UUID_OSSP}
        lossless_roundtrip_rows = 6
        lossless_postgres = system:15
        """
    )
    pytester.makepyfile(
        """
        import psycopg

        def test_server(lossless_server, lossless_database):
            assert lossless_server.kind == "system"
            assert lossless_server.version.startswith("15.")
            with psycopg.connect(lossless_database, autocommit=True) as conn:
                conn.execute('CREATE EXTENSION "uuid-ossp"')
                assert conn.execute("SELECT uuid_generate_v4()").fetchone()[0].version == 4
        """
    )
    for key in [k for k in os.environ if k.startswith("LOSSLESS_")]:
        monkeypatch.delenv(key)
    from_ini = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    from_option = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--lossless-postgres", f"system:{DEBIAN_15}", "-k", "server"
    )
    from_ini.assert_outcomes(passed=2)
    from_ini.stdout.fnmatch_lines(
        [
            "lossless: a throwaway PostgreSQL server (--lossless-postgres system:15)",
            "*lossless_roundtrip PASSED*",
            f"lossless: tests ran on PostgreSQL 15.* (throwaway server from {DEBIAN_15} at *)",
        ]
    )
    from_option.assert_outcomes(passed=1)
    from_option.stdout.fnmatch_lines([f"*--lossless-postgres system:{DEBIAN_15})"])
