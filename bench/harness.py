"""Shared benchmark plumbing: a server, a fresh database, timings, client memory, a table.

Benchmarks compare the toolkit against hand-written SQL *in the same run on the same
server*, and report ratios, never absolute pass/fail thresholds. Run one as
``python -m bench.<name> [--rows N] [--url URL]``; without ``--url`` (or ``LOSSLESS_URL``)
an embedded PostgreSQL is started.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from toolkit.postgres import Server, provision, scratch_database
from toolkit.postgres.url import sqlalchemy_url


def parser(description: str, *, default_rows: int) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--rows", type=int, default=default_rows, help="rows (default %(default)s)")
    p.add_argument("--url", default=None, help="server URL (default: LOSSLESS_URL or embedded)")
    p.add_argument("--repeat", type=int, default=1, help="runs per variant; the best is kept")
    return p


@contextmanager
def bench_server(url: str | None) -> Iterator[Server]:
    """The server to benchmark on (explicit URL, ``LOSSLESS_URL``, else embedded)."""
    with provision(url) as server:
        print(f"# {server.describe()}")
        yield server


@contextmanager
def fresh_engine(server: Server) -> Iterator[Engine]:
    """An engine on a new scratch database, dropped afterwards."""
    with scratch_database(server.url, prefix="lossless_bench") as url:
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        try:
            yield engine
        finally:
            engine.dispose()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class Timer:
    """Collects ``label -> best seconds``."""

    results: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.results[label] = min(elapsed, self.results.get(label, float("inf")))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[str(c) for c in headers], *[[_fmt(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
