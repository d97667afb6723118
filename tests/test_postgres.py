"""The provisioning chain: explicit URL, LOSSLESS_URL, embedded default, Docker up to the call."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest

from toolkit.errors import ProvisioningError, UsageError
from toolkit.postgres import (
    Server,
    create_database,
    database_exists,
    drop_database,
    provision,
    scratch_database,
)
from toolkit.postgres.docker import parse_docker_spec, start_docker
from toolkit.postgres.embedded import start_embedded
from toolkit.postgres.url import mask_url, scrub, with_database


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "gone"
    return next((ln for ln in status.splitlines() if ln.startswith("State:")), "").lower()


def test_explicit_url_is_honoured(lossless_server: Server) -> None:
    with provision(lossless_server.url, env=False) as server:
        assert server.kind == "url"
        assert server.url == lossless_server.url
        assert server.version == lossless_server.version


def test_lossless_url_environment_is_honoured(
    lossless_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSLESS_URL", lossless_server.url)
    with provision() as server:
        assert (server.kind, server.url) == ("url", lossless_server.url)


def test_explicit_url_wins_over_environment(
    lossless_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSLESS_URL", "postgresql://nobody:pw@127.0.0.1:1/nowhere")
    with provision(lossless_server.url) as server:
        assert server.url == lossless_server.url


def test_embedded_default_starts_and_is_cleaned_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOSSLESS_URL", raising=False)
    with provision() as server:
        assert server.kind == "embedded"
        assert server.version.split(".")[0] == "18"
        with psycopg.connect(server.url) as conn:
            row = conn.execute(
                "SELECT pg_postmaster_start_time() IS NOT NULL, current_setting('data_directory')"
            ).fetchone()
        assert row is not None
        assert row[0] is True
        data_dir = Path(str(row[1]))
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        assert pid_alive(pid)
    assert not pid_alive(pid), "embedded postgres still running after the context exited"
    assert not data_dir.exists()
    assert not data_dir.parent.exists(), "temporary directory left behind"


def test_embedded_stop_is_idempotent() -> None:
    server = start_embedded()
    root = server.root
    server.stop()
    server.stop()
    assert not root.exists()


def test_bad_url_error_masks_password() -> None:
    port = _closed_port()
    url = f"postgresql://admin:s3cr3t-Pa55@127.0.0.1:{port}/prod"
    with pytest.raises(ProvisioningError) as info, provision(url, env=False):
        pass  # pragma: no cover - never reached
    message = str(info.value)
    assert "s3cr3t-Pa55" not in message
    assert "admin:***@127.0.0.1" in message
    assert "cannot connect" in message


def test_wrong_password_message_is_masked(lossless_server: Server) -> None:
    # trust auth accepts any password: the message we check is the connect failure's on a bad db
    url = with_database(lossless_server.url, "no_such_db_here").replace(
        "postgres@", "postgres:hunter2@", 1
    )
    with pytest.raises(ProvisioningError) as info, provision(url, env=False):
        pass  # pragma: no cover
    assert "hunter2" not in str(info.value)
    assert "no_such_db_here" in str(info.value)


def test_not_a_postgres_url_is_a_usage_error() -> None:
    expected = "not a PostgreSQL URL: mysql://u:\\*\\*\\*@h/db"
    with pytest.raises(UsageError, match=expected), provision("mysql://u:pw@h/db", env=False):
        pass  # pragma: no cover


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("host=h password=pw user=u", "host=h password=*** user=u"),
        ("postgres://u:p%40ss@h/db", "postgres://u:***@h/db"),
    ],
)
def test_mask_url(text: str, expected: str) -> None:
    assert mask_url(text) == expected


def test_scrub_removes_password_from_free_text() -> None:
    url = "postgresql://u:Zq9secret@h/db"
    assert scrub("failed for Zq9secret at postgresql://u:Zq9secret@h/db", url) == (
        "failed for *** at postgresql://u:***@h/db"
    )


def test_scratch_database_is_created_and_dropped(lossless_server: Server) -> None:
    with scratch_database(lossless_server.url, prefix="lossless_t") as url:
        name = url.rsplit("/", 1)[1]
        assert database_exists(lossless_server.url, name)
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (id int)")
    assert not database_exists(lossless_server.url, name)


def test_database_from_template_copies_content(lossless_server: Server) -> None:
    with scratch_database(lossless_server.url, prefix="lossless_tpl") as template_url:
        with psycopg.connect(template_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT generate_series(1, 5) AS n")
        template = template_url.rsplit("/", 1)[1]
        clone_url = create_database(lossless_server.url, template + "_c", template=template)
        try:
            with psycopg.connect(clone_url) as conn:
                row = conn.execute("SELECT count(*), sum(n) FROM t").fetchone()
            assert row == (5, 15)
        finally:
            drop_database(lossless_server.url, template + "_c")


def test_refuses_to_drop_the_database_the_url_names(lossless_server: Server) -> None:
    with (
        scratch_database(lossless_server.url) as url,
        pytest.raises(UsageError, match="refusing to drop"),
    ):
        drop_database(url, url.rsplit("/", 1)[1])


@pytest.mark.parametrize(
    ("spec", "image"),
    [
        ("docker", "postgres:16"),
        ("docker:", "postgres:16"),
        ("docker:15", "postgres:15"),
        ("docker:17.2", "postgres:17.2"),
    ],
)
def test_docker_spec(spec: str, image: str) -> None:
    assert parse_docker_spec(spec) == image


@pytest.mark.parametrize("spec", ["podman", "docker:16;rm -rf"])
def test_bad_docker_spec(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_docker_spec(spec)


class _RecordingContainer:
    """Stands in for the Docker engine only: records what testcontainers would be asked."""

    calls: list[tuple[str, dict[str, str]]] = []

    def __init__(self, image: str, **kwargs: str) -> None:
        self.calls.append((image, kwargs))

    def start(self) -> None:
        raise RuntimeError("Error while fetching server API version: no docker socket")


def test_docker_provisioning_up_to_the_docker_call() -> None:
    _RecordingContainer.calls.clear()
    with pytest.raises(ProvisioningError, match="could not start postgres:15 in Docker"):
        start_docker("docker:15", container_class=_RecordingContainer)
    assert _RecordingContainer.calls == [
        ("postgres:15", {"username": "postgres", "password": "postgres", "dbname": "postgres"})
    ]


def test_docker_through_testcontainers_gives_a_server_or_a_clear_error() -> None:
    # With an engine this starts a real container; without one (CI here) it must be one
    # clear ProvisioningError, not a traceback from the Docker client.
    try:
        with provision(postgres="docker:16", env=False) as server:
            assert server.kind == "docker"
            assert server.version.startswith("16")
    except ProvisioningError as exc:
        assert "could not start postgres:16 in Docker" in str(exc)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
