"""Fixtures of this repo's own tests (the generic ones come from ``toolkit.pytest_plugin``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine


@pytest.fixture
def conn(lossless_engine: Engine) -> Iterator[Connection]:
    """An autocommit connection on the test's fresh database."""
    with lossless_engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")
