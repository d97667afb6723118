"""Scratch databases are dropped in the background, and a failed drop is not silent."""

from __future__ import annotations

import pytest

from toolkit.errors import ProvisioningError
from toolkit.postgres import Server, database_exists
from toolkit.postgres.url import database_name
from toolkit.roundtrip.scratch import BackgroundDrops, ScratchDatabases


def test_released_databases_are_gone_when_the_block_ends(lossless_server: Server) -> None:
    with ScratchDatabases(lossless_server.url) as databases:
        urls = [databases.create("lossless_test_scratch") for _ in range(3)]
        with databases.connected("lossless_test_scratch", template=database_name(urls[0])):
            pass
        for url in urls:
            assert database_exists(lossless_server.url, database_name(url))
            databases.release(url)

    assert not any(database_exists(lossless_server.url, database_name(u)) for u in urls)


def test_kept_databases_are_not_dropped(lossless_server: Server) -> None:
    with ScratchDatabases(lossless_server.url, keep=True) as databases:
        url = databases.create("lossless_test_scratch")
        databases.release(url)
    name = database_name(url)
    try:
        assert databases.kept == [name]
        assert database_exists(lossless_server.url, name)
    finally:
        with ScratchDatabases(lossless_server.url) as cleanup:
            cleanup.release(url)


def test_a_drop_that_fails_is_raised_with_the_database_name(lossless_server: Server) -> None:
    drops = BackgroundDrops(lossless_server.url)
    own = database_name(lossless_server.url)
    drops.drop(own)

    with pytest.raises(ProvisioningError, match=f"cannot drop database '{own}'"):
        drops.finish()
    assert database_exists(lossless_server.url, own)
