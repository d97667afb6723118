"""Try again what failed for want of a lock: ``--lock-retries`` (a whole revision) and online
mode's short transactions (``toolkit.ops.online``, with pauses of its own, see ``pause``).

A revision that waits longer than ``lock_timeout`` for a table lock is cancelled by the
server and rolled back (nothing of it stays); the application's queries queued behind the
migration's lock request then go on. Rather than fail the run, the revision is tried again
after a pause that doubles each time (0.5 s, 1 s, 2 s, ... up to 30 s) and is jittered by
±50 %, so that two runs, or a run and a busy application, do not keep meeting at the same
moment (as GitLab's ``with_lock_retries`` and pgroll's lock-timeout retries do).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 30.0


def pause_s(retry: int, *, rng: Callable[[], float] = random.random) -> float:
    """The pause before retry number ``retry`` (1-based): doubling, capped, ±50 % jitter."""
    base = min(MAX_PAUSE_S, FIRST_PAUSE_S * 2.0 ** (retry - 1))
    return base * (0.5 + rng())


def with_lock_retries(
    attempt: Callable[[], T],
    *,
    retries: int,
    lock_not_available: Callable[[Exception], bool],
    on_retry: Callable[[int, float, Exception], None],
    pause: Callable[[int], float] = pause_s,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()``, tried again up to ``retries`` times while it fails for want of a lock.

    ``on_retry(retry, pause, error)`` is told before each pause (``pause(retry)`` seconds,
    ``retry`` counted from 1); any other error, or the last lock failure, is raised as it is.
    """
    retry = 0
    while True:
        try:
            return attempt()
        except Exception as exc:
            if retry >= retries or not lock_not_available(exc):
                raise
            retry += 1
            seconds = pause(retry)
            on_retry(retry, seconds, exc)
            sleep(seconds)
