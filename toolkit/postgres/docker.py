"""PostgreSQL in Docker through testcontainers (the ``docker`` extra). Kept thin on purpose."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolkit.errors import ProvisioningError, UsageError

DEFAULT_IMAGE_VERSION = "16"


def parse_docker_spec(spec: str) -> str:
    """``docker`` or ``docker:16`` -> the image, ``postgres:16``."""
    kind, _, version = spec.partition(":")
    if kind != "docker":
        raise UsageError(f"unknown --postgres value {spec!r}: use 'docker' or 'docker:VERSION'")
    version = version or DEFAULT_IMAGE_VERSION
    if not version.replace(".", "").replace("-", "").isalnum():
        raise UsageError(f"bad PostgreSQL image version {version!r}")
    return f"postgres:{version}"


@dataclass
class DockerServer:
    """A running container; ``stop()`` removes it."""

    container: Any
    url: str

    def stop(self) -> None:
        self.container.stop()


def _container_class() -> Callable[..., Any]:
    try:
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # testcontainers < 4.14 kept it at the top level
            from testcontainers.postgres import PostgresContainer
    except ImportError as exc:
        raise ProvisioningError(
            "Docker provisioning needs the docker extra: pip install 'lossless[docker]'"
        ) from exc
    cls: Callable[..., Any] = PostgresContainer
    return cls


def start_docker(spec: str, *, container_class: Callable[..., Any] | None = None) -> DockerServer:
    """Start ``postgres:VERSION`` in Docker and return its URL."""
    image = parse_docker_spec(spec)
    factory = container_class or _container_class()
    try:
        # The client talks to the engine already in the constructor, so both calls are guarded.
        container = factory(image, username="postgres", password="postgres", dbname="postgres")
        container.start()
    except Exception as exc:  # docker raises many unrelated types; all mean "no server"
        raise ProvisioningError(f"could not start {image} in Docker: {exc}") from exc
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5432)
    return DockerServer(container, f"postgresql://postgres:postgres@{host}:{port}/postgres")
