"""Online batches by heap pages (``toolkit.ops.online._Pages``: the stash's) on real
PostgreSQL: rows an application update moves from a page the batches have not reached yet
to one they already passed, and a table rewritten while the run is under way, still end in
the new structure, and the result is the plain upgrade's (full-catalog fingerprint).

The run is stopped deterministically at the first page holding a row (another connection
holds that row's lock, the batch's lock gives up without retrying), the application's
writes happen while it is stopped (its triggers and progress are in place), and the rerun
continues from the recorded page.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.exc import DBAPIError

from tests.ops.test_online import PROJECT, SCENARIO, copy_of, normalized_fingerprint
from tests.ops.test_online import template as template  # the module's fixture
from toolkit import migrate
from toolkit.postgres import Server
from toolkit.postgres.url import libpq_url
from toolkit.verify.fingerprint import fingerprint_diff

#: One page per batch; a busy row lock stops the run at once.
STOPPING = {
    "online": "true",
    "online_batch_size": "1",
    "online_retries": "0",
    "online_lock_timeout_ms": "50",
}
FILLER = "lossless filler"
#: The page of a row.
PAGE = sql.SQL("(ctid::text::point)[0]::int")


def _free_first_pages(url: str) -> None:
    """``targets``, ``commitments`` and ``sprints`` at fillfactor 100, their rows rewritten
    behind pages of filler rows that are then deleted and vacuumed: the tables' first pages
    are free space, which the next updates that do not fit their page fill."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for table, others in (
            ("targets", ("goal_id", "sprint_id")),
            ("commitments", ("client_id",)),
            ("sprints", ("client_id",)),
        ):
            name = sql.Identifier(table)
            kept = sql.SQL(", ").join(map(sql.Identifier, others))
            filler = sql.Literal(FILLER)
            for statement in (
                "ALTER TABLE {t} SET (fillfactor = 100)",
                "INSERT INTO {t} (title, {kept}) SELECT {filler}, {kept} FROM {t},"
                " generate_series(1, 8)",
                "UPDATE {t} SET title = title WHERE title <> {filler}",
                "DELETE FROM {t} WHERE title = {filler}",
                "VACUUM {t}",
            ):
                conn.execute(sql.SQL(statement).format(t=name, kept=kept, filler=filler))


def _widen(url: str, table: str, where: str = "TRUE") -> None:
    """The application's update of a column the operations do not move, too wide to stay
    on the row's page (not HOT): the row moves to free space."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET title = title || repeat('w', 300) WHERE {}").format(
                sql.Identifier(table), sql.SQL(where)
            )
        )


def _stopped_at_first_row(url: str, table: str, entries: int = 2) -> int:
    """Run the upgrade online until its batches reach ``table``'s first row, which another
    connection holds: the run stops there. The page it stopped at (recorded progress)."""
    with psycopg.connect(libpq_url(url)) as blocker:
        first = blocker.execute(
            sql.SQL("SELECT {} FROM {} ORDER BY ctid LIMIT 1 FOR UPDATE").format(
                PAGE, sql.Identifier(table)
            )
        ).fetchone()
        assert first is not None and first[0] > 0  # the first pages are free
        with pytest.raises(DBAPIError, match="lock"):
            migrate.upgrade(PROJECT, url, SCENARIO.after, x=STOPPING)
        blocker.rollback()
        recorded = blocker.execute(
            "SELECT payload -> 'last' FROM lossless_online WHERE table_name = %s", (table,)
        ).fetchall()
        blocker.rollback()
    lasts: list[Any] = [r[0] for r in recorded]
    assert len(lasts) == entries and len({str(last) for last in lasts}) == 1, lasts
    page, end, _file_node = lasts[0]
    assert page == first[0] < end  # [next page, end of the pass, file node]
    return int(page)


def _moved_before(url: str, table: str, page: int) -> int:
    """How many rows of ``table`` are on pages before ``page``."""
    with psycopg.connect(libpq_url(url)) as conn:
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} < %s").format(sql.Identifier(table), PAGE)
        found = conn.execute(query, (page,)).fetchone()
        assert found is not None
        return int(found[0])


def test_stash_rows_moved_behind_the_batches_and_a_rewrite_are_not_missed(
    lossless_server: Server, template: str
) -> None:
    with copy_of(lossless_server, template) as plain, copy_of(lossless_server, template) as url:
        for database in (plain, url):
            _free_first_pages(database)

        # targets (the promotes) still go in key order: stopped there, nothing is a page.
        with psycopg.connect(libpq_url(url)) as blocker:
            blocker.execute("SELECT FROM targets ORDER BY ctid LIMIT 1 FOR UPDATE")
            with pytest.raises(DBAPIError, match="lock"):
                migrate.upgrade(PROJECT, url, SCENARIO.after, x=STOPPING)
            blocker.rollback()
            found = blocker.execute("SELECT payload -> 'last' FROM lossless_online").fetchall()
            assert not [r[0] for r in found if isinstance(r[0], list)], found
        _widen(url, "targets")

        page = _stopped_at_first_row(url, "commitments")
        _widen(url, "commitments", "md5(id::text) < '8'")  # about half of them
        assert _moved_before(url, "commitments", page) > 0

        _stopped_at_first_row(url, "sprints", entries=1)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            # A rewrite moves every row, none reflected yet, some to pages already passed.
            conn.execute("VACUUM FULL sprints")

        migrate.upgrade(PROJECT, url, SCENARIO.after, x={**STOPPING, "online_retries": "50"})
        _widen(plain, "targets")
        _widen(plain, "commitments", "md5(id::text) < '8'")
        migrate.upgrade(PROJECT, plain, SCENARIO.after)
        assert fingerprint_diff(normalized_fingerprint(plain), normalized_fingerprint(url)) == []
