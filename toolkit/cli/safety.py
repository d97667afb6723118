"""Keep passwords out of everything the CLI prints, logs included.

The URLs a run was given are remembered; every line the CLI writes goes through ``clean``,
and a log-record factory cleans every log record as it is created, so even a team's
``env.py`` that installs its own logging handlers cannot print a password it was handed.
"""

from __future__ import annotations

import logging
from typing import Any

from toolkit.postgres.url import mask_url, scrub

_urls: list[str] = []


def remember_url(url: str | None) -> None:
    """Add ``url`` to the URLs whose password must never be printed."""
    if url and url not in _urls:
        _urls.append(url)


def clean(text: str) -> str:
    """``text`` without any remembered password or any password-looking part of a URL."""
    for url in _urls:
        text = scrub(text, url)
    return mask_url(text) if not _urls else text


def one_line(text: str) -> str:
    """``text`` cleaned and folded onto one line."""
    return " ".join(clean(text).split())


def install_log_scrubber() -> None:
    """Clean every log record at creation, whatever handler prints it later."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "lossless_scrubber", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        cleaned = clean(message)
        # Untouched unless needed: handlers may read the original arguments (the progress
        # watcher reads Alembic's migration step from them).
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return record

    factory.lossless_scrubber = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
