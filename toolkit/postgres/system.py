"""A throwaway server from PostgreSQL binaries installed on the machine (``--postgres system``).

``system`` takes the newest installation found, ``system:15`` the newest of major version 15,
``system:/path/to/bin`` that binary directory. The server itself is the same throwaway one
as the embedded server (``toolkit.postgres.throwaway``); only the binaries differ, and with
them the extensions on offer (``uuid-ossp``, ``pgcrypto``, PostGIS when installed).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ProvisioningError, UsageError
from toolkit.postgres.throwaway import PROGRAMS, Binaries

#: Where binary directories are looked for, after ``pg_config --bindir`` and ``postgres`` on
#: the PATH: Debian and Ubuntu, the PGDG RPMs, source builds, Homebrew (Apple silicon, Intel,
#: Linux).
PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql*/bin",
    "/usr/local/opt/postgresql*/bin",
    "/home/linuxbrew/.linuxbrew/opt/postgresql*/bin",
)
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Installation:
    """A directory holding ``initdb``, ``pg_ctl`` and ``postgres``, and their version."""

    bindir: Path
    version: str

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", self.version)[:2])

    @property
    def major(self) -> int:
        return self.key[0]

    def binaries(self) -> Binaries:
        """The installation with its share and library trees (from its ``pg_config``)."""
        pg_config = self.bindir / "pg_config"
        trees: list[Path] = []
        if pg_config.is_file():
            out = _output([str(pg_config), "--sharedir", "--pkglibdir"])
            trees = [Path(line) for line in out.splitlines() if line.strip()]
        if not trees:
            trees = [self.bindir.parent / "share", self.bindir.parent / "lib"]
        return Binaries(
            self.bindir,
            tuple(t for t in trees if t.is_dir()),
            f"PostgreSQL {self.version} from {self.bindir}",
        )


def _output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def inspect(bindir: Path) -> Installation | None:
    """The installation in ``bindir``, or ``None`` if it lacks a program or a version."""
    if not all(os.access(bindir / name, os.X_OK) for name in PROGRAMS):
        return None
    match = _VERSION.search(_output([str(bindir / "postgres"), "--version"]))
    if match is None:
        return None
    return Installation(bindir, ".".join(g for g in match.groups() if g is not None))


def searched(patterns: Sequence[str] = PATTERNS) -> list[str]:
    """The places looked at, for messages."""
    return ["pg_config --bindir", "postgres on the PATH", *patterns]


def _candidates(patterns: Sequence[str]) -> Iterable[Path]:
    if shutil.which("pg_config"):
        bindir = _output(["pg_config", "--bindir"]).strip()
        if bindir:
            yield Path(bindir)
    postgres = shutil.which("postgres")
    if postgres:
        yield Path(postgres).parent
    for pattern in patterns:
        yield from (Path(p) for p in sorted(glob.glob(pattern)))


def discover(patterns: Sequence[str] = PATTERNS) -> list[Installation]:
    """Every installation found, newest first (one per real directory)."""
    seen: set[Path] = set()
    found: list[Installation] = []
    for bindir in _candidates(patterns):
        real = bindir.resolve()
        if real in seen:
            continue
        seen.add(real)
        installation = inspect(bindir)
        if installation is not None:
            found.append(installation)
    return sorted(found, key=lambda i: i.key, reverse=True)


def parse_system_spec(spec: str) -> str | int | Path | None:
    """``system`` -> None (newest), ``system:15`` -> 15, ``system:/usr/lib/.../bin`` -> a Path."""
    kind, colon, want = spec.partition(":")
    if kind != "system":
        raise UsageError(f"not a system PostgreSQL: {spec!r}")
    if not colon or not want:
        return None
    if want.isdigit():
        return int(want)
    if "/" in want or want.startswith("~"):
        return Path(want).expanduser()
    raise UsageError(
        f"bad --postgres {spec!r}: use 'system', 'system:MAJOR' (e.g. system:15) "
        "or 'system:/path/to/bin'"
    )


def find_installation(spec: str, patterns: Sequence[str] = PATTERNS) -> Installation:
    """The installation ``spec`` asks for; a clear error naming the places searched."""
    want = parse_system_spec(spec)
    if isinstance(want, Path):
        installation = inspect(want)
        if installation is None:
            missing = [n for n in PROGRAMS if not os.access(want / n, os.X_OK)]
            what = f"no {', '.join(missing)}" if missing else "its postgres gives no version"
            raise ProvisioningError(f"--postgres {spec}: not a PostgreSQL bin directory ({what})")
        return installation
    found = discover(patterns)
    matching = [i for i in found if want is None or i.major == want]
    if matching:
        return matching[0]
    places = "; ".join(searched(patterns))
    ways_out = (
        "install PostgreSQL (e.g. apt-get install postgresql), name a directory with "
        "--postgres system:/path/to/bin, or use --url, --postgres docker[:VERSION], "
        "or the embedded server (no --postgres)"
    )
    if found:
        have = ", ".join(f"{i.version} in {i.bindir}" for i in found)
        raise ProvisioningError(
            f"no PostgreSQL {want} binaries found (found: {have}; searched: {places}); "
            f"use one of those or {ways_out}"
        )
    raise ProvisioningError(f"no PostgreSQL binaries found (searched: {places}); {ways_out}")
