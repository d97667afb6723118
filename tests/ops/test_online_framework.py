"""The pieces online mode gives every operation (``toolkit.ops.online``): indexes built
concurrently from their recorded definitions, and the guard against a plain run of an
operation whose online run is under way. The NOT NULL path and the indexes inside a whole
online run are exercised by the operations that use them (their round-trip tests)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from tests.cli.conftest import engine_on
from tests.ops.test_online import PROJECT, SCENARIO, copy_of, leftovers, normalized_fingerprint
from tests.ops.test_online import template as template  # the module's fixture
from toolkit import migrate
from toolkit.errors import OnlineAbortedError, UsageError
from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import libpq_url
from toolkit.sql.idents import render
from toolkit.sql.online import concurrently
from toolkit.verify.fingerprint import fingerprint_diff


@pytest.fixture
def db(lossless_server: Server) -> Iterator[psycopg.Connection]:
    with (
        scratch_database(lossless_server.url, prefix="lossless_online_index") as url,
        psycopg.connect(libpq_url(url), autocommit=True) as conn,
    ):
        yield conn


RECORDED = [
    'CREATE UNIQUE INDEX "odd ix" ON public.t USING btree (a, lower(b)) WHERE (a > 0)',
    "CREATE INDEX t_b_idx ON public.t USING btree (b DESC NULLS LAST) INCLUDE (a)",
]


@pytest.mark.parametrize("indexdef", RECORDED)
def test_a_recorded_index_is_built_concurrently_as_it_was(
    db: psycopg.Connection, indexdef: str
) -> None:
    db.execute("CREATE TABLE t (a int, b text)")
    db.execute("INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 500) g")
    statement = concurrently(indexdef)
    unique = "UNIQUE " if "UNIQUE" in indexdef else ""
    assert render(statement).startswith(f"CREATE {unique}INDEX CONCURRENTLY ")
    db.execute(render(statement))  # autocommit: CONCURRENTLY refuses a transaction block
    found = db.execute(
        "SELECT pg_get_indexdef(indexrelid), indisvalid FROM pg_index"
        " WHERE indrelid = 't'::regclass"
    ).fetchall()
    assert found == [(indexdef, True)]


def test_an_index_of_a_partitioned_table_is_refused() -> None:
    with pytest.raises(UsageError, match="partitioned table"):
        concurrently("CREATE INDEX p_a_idx ON ONLY public.p USING btree (a)")
    with pytest.raises(UsageError, match="not an index definition"):
        concurrently("DROP TABLE t")


def test_a_plain_run_is_refused_while_an_online_run_is_under_way(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as url:
        original = normalized_fingerprint(url)
        x = {"online": "true", "online_retries": "0", "online_lock_timeout_ms": "50"}
        # The first junction's foreign key to client_goals cannot be added while this is held:
        # the online run stops after its backfill, with its progress recorded.
        with psycopg.connect(libpq_url(url)) as blocker:
            blocker.execute("LOCK TABLE client_goals IN SHARE MODE")
            with pytest.raises(DBAPIError, match="lock"):
                migrate.upgrade(PROJECT, url, SCENARIO.after, x=x)
            blocker.rollback()
        stopped = normalized_fingerprint(url)
        with engine_on(url) as engine, engine.connect() as conn:
            under_way = leftovers(conn)
        assert "table lossless_online" in under_way

        with pytest.raises(UsageError, match="online run of promote_fk_to_junction") as refused:
            migrate.upgrade(PROJECT, url, SCENARIO.after)
        assert "--abort" in str(refused.value)
        assert fingerprint_diff(stopped, normalized_fingerprint(url)) == []
        assert migrate.current(PROJECT, url) == (SCENARIO.before,)

        with pytest.raises(OnlineAbortedError):
            migrate.upgrade(PROJECT, url, SCENARIO.after, x={"online": "abort"})
        assert fingerprint_diff(original, normalized_fingerprint(url)) == []
        with engine_on(url) as engine, engine.connect() as conn:
            assert leftovers(conn) == []
        migrate.upgrade(PROJECT, url, SCENARIO.after)  # the plain run now goes through
        assert migrate.current(PROJECT, url) == (SCENARIO.after,)
