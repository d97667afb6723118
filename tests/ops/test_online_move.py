"""Online mode of ``move_fk_to_child`` (the iteration-decoupling upgrade) on real PostgreSQL.

The plain upgrade is the reference: an online upgrade of a copy of the same database ends
with the same full-catalog fingerprint, with or without the application writing during
it; an abort gives back the database as it was; a refusal leaves nothing behind.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from tests.cli.conftest import engine_on
from tests.ops.test_online import leftovers
from toolkit import migrate
from toolkit.bundled import get_scenario
from toolkit.errors import DataRefusedError, OnlineAbortedError, UsageError
from toolkit.migrate import Project
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff

SCENARIO = get_scenario("iteration-decoupling")
PROJECT = Project.for_scenario(SCENARIO)
ONLINE = {"online": "true", "online_batch_size": "5"}


@pytest.fixture(scope="module")
def template(lossless_server: Server) -> Iterator[str]:
    """Model B with 90 seeded iterations (copied by each test)."""
    with scratch_database(lossless_server.url, prefix="lossless_move_template") as url:
        migrate.upgrade(PROJECT, url, SCENARIO.before)
        with engine_on(url) as engine, engine.begin() as conn:
            SCENARIO.seed(conn, 90, 4)
        yield url


@contextmanager
def copy_of(server: Server, template: str) -> Iterator[str]:
    name = template.rsplit("/", 1)[1]
    with scratch_database(server.url, prefix="lossless_move", template=name) as url:
        yield url


def print_of(url: str) -> Any:
    with engine_on(url) as engine, engine.connect() as conn:
        return fingerprint(conn)


def no_leftovers(url: str) -> list[str]:
    with engine_on(url) as engine, engine.connect() as conn:
        return leftovers(conn)


def test_online_move_to_child_ends_as_the_plain_one(lossless_server: Server, template: str) -> None:
    with copy_of(lossless_server, template) as plain, copy_of(lossless_server, template) as online:
        expected = migrate.upgrade(PROJECT, plain, SCENARIO.after)
        results = migrate.upgrade(PROJECT, online, SCENARIO.after, x=ONLINE)
        assert fingerprint_diff(print_of(plain), print_of(online)) == []
        assert [(r.operation, r.counts, r.notes) for r in results] == [
            (r.operation, r.counts, r.notes) for r in expected
        ]
        assert results[0].counts["stashed"] > 0 and results[0].counts["moved"] > 0
        assert no_leftovers(online) == []
