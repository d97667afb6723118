"""Pin the session settings that change how values print, for the time of a snapshot.

Fingerprints hash the text form of rows; ``TimeZone``, ``DateStyle`` and friends change that
text without changing the data. Two snapshots taken from differently configured sessions
must still compare equal, so every snapshot and row capture runs under the same settings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import Connection, bindparam, func, select

CANONICAL_SETTINGS: dict[str, str] = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    # A fingerprint of the rows one role may see is no fingerprint of the table: with row
    # security off, a query that a policy would filter fails instead of hashing a subset.
    "row_security": "off",
}


@contextmanager
def canonical_settings(
    conn: Connection, *, extra: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Apply ``CANONICAL_SETTINGS`` (and ``extra``); restore the previous values after."""
    settings = {**CANONICAL_SETTINGS, **(extra or {})}
    names = list(settings)
    current = conn.execute(select(*(func.current_setting(n) for n in names))).one()
    previous = dict(zip(names, current, strict=True))
    _apply(conn, settings)
    # Restored only on success: after an error the transaction may be aborted, and a failed
    # restore must not hide the original error.
    yield
    _apply(conn, previous)


def _apply(conn: Connection, settings: Mapping[str, str]) -> None:
    calls = [
        func.set_config(n, bindparam(f"v{i}", v), False)
        for i, (n, v) in enumerate(settings.items())
    ]
    conn.execute(select(*calls))
