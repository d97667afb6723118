"""Snapshots on real PostgreSQL: structure from the catalogs, data fingerprints in SQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Connection, text

from toolkit.errors import UsageError
from toolkit.verify import Column, Snapshot, capture_rows, compare_rows, diff, take_snapshot

SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE owners (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id int REFERENCES owners (id) ON DELETE CASCADE,
    title varchar(40) NOT NULL DEFAULT 'untitled',
    price numeric(8, 2) CHECK (price >= 0),
    feeling mood,
    meta jsonb,
    seen_at timestamptz
);
CREATE INDEX ix_items_title ON items (lower(title));
CREATE VIEW item_titles AS SELECT id, title FROM items;
INSERT INTO owners (name) VALUES ('ann'), ('bob');
INSERT INTO items (owner_id, title, price, feeling, meta, seen_at)
SELECT 1 + mod(i, 2), 'item ' || i, i * 1.25, CASE WHEN mod(i, 2) = 0 THEN 'happy'::mood END,
       CASE mod(i, 3) WHEN 0 THEN NULL WHEN 1 THEN '{}'::jsonb ELSE '{"k": "é"}'::jsonb END,
       timestamptz '2024-01-01 12:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 30) AS i;
"""


@pytest.fixture
def db(conn: Connection) -> Connection:
    conn.exec_driver_sql(SCHEMA)
    return conn


#: The documented definition written out for ``items``: count(*) and the numeric sum of
#: the 64-bit hashes of each row's columns, sorted by name, as a record's text.
BY_HAND = """
SELECT count(*), sum(hashtextextended(
    ROW(t.feeling, t.id, t.meta, t.owner_id, t.price, t.seen_at, t.title)::text, 0))
FROM items AS t
"""


def test_structure_comes_from_the_catalogs(db: Connection) -> None:
    snap = take_snapshot(db)

    assert snap.table_names == ("items", "owners")
    items = snap.table("items")
    assert items is not None
    assert items.column("title") == Column(
        "title", "character varying(40)", True, "'untitled'::character varying"
    )
    assert items.column("id") == Column("id", "bigint", True, identity="always")
    assert items.column("feeling") == Column("feeling", "mood", False)
    constraints = {c.name: (c.kind, c.definition) for c in items.constraints}
    assert constraints == {
        "items_pkey": ("primary key", "PRIMARY KEY (id)"),
        "items_owner_id_fkey": (
            "foreign key",
            "FOREIGN KEY (owner_id) REFERENCES owners(id) ON DELETE CASCADE",
        ),
        "items_price_check": ("check", "CHECK ((price >= (0)::numeric))"),
    }
    indexes = {i.name: i.definition for i in items.indexes}
    assert indexes["ix_items_title"] == (
        "CREATE INDEX ix_items_title ON public.items USING btree (lower((title)::text))"
    )
    sequences = {s.name: s for s in snap.sequences}
    assert sequences["owners_id_seq"].owned_by == "owners.id"
    assert sequences["items_id_seq"].data_type == "bigint"
    assert [(e.name, e.labels) for e in snap.enums] == [("mood", ("happy", "sad"))]
    assert [v.name for v in snap.views] == ["item_titles"]


def test_data_fingerprint_is_count_and_sum_of_row_hashes(db: Connection) -> None:
    snap = take_snapshot(db)
    items = snap.table("items")
    assert items is not None

    count, total = db.exec_driver_sql(BY_HAND).one()
    assert (items.rows, items.fingerprint) == (count, int(total)) == (30, int(total))


def test_alembic_version_and_listed_tables_are_left_out(db: Connection) -> None:
    db.exec_driver_sql("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")

    assert "alembic_version" not in take_snapshot(db).table_names
    assert take_snapshot(db, exclude_tables=("owners",)).table_names == (
        "alembic_version",
        "items",
    )


def test_column_order_and_row_order_do_not_matter(db: Connection) -> None:
    before = take_snapshot(db)
    # Rebuild items with its columns in another physical order and its rows reversed.
    db.exec_driver_sql(
        """
        CREATE TABLE items_copy AS SELECT * FROM items;
        DROP VIEW item_titles;
        ALTER TABLE items DROP COLUMN meta, DROP COLUMN feeling;
        ALTER TABLE items ADD COLUMN meta jsonb, ADD COLUMN feeling mood;
        UPDATE items SET meta = c.meta, feeling = c.feeling FROM items_copy c
         WHERE c.id = items.id;
        DROP TABLE items_copy;
        CREATE VIEW item_titles AS SELECT id, title FROM items;
        CREATE TABLE shuffled AS SELECT * FROM owners ORDER BY id DESC;
        """
    )
    after = take_snapshot(db, exclude_tables=("alembic_version", "shuffled"))

    assert diff(before, after).ok
    shuffled = take_snapshot(db).table("shuffled")
    owners = after.table("owners")
    assert shuffled is not None and owners is not None
    assert (shuffled.rows, shuffled.fingerprint) == (owners.rows, owners.fingerprint)


@pytest.mark.parametrize(
    ("old", "new"),
    [(None, "{}"), ("{}", "[]"), ('{"a": 1.5}', '{"a": 1.50}'), ('{"a": "1"}', '{"a": 1}')],
)
def test_values_that_look_alike_fingerprint_differently(
    db: Connection, old: str | None, new: str
) -> None:
    update = text("UPDATE items SET meta = CAST(:meta AS jsonb) WHERE id = 1")
    db.execute(update, {"meta": old})
    before = take_snapshot(db)
    db.execute(update, {"meta": new})
    after = take_snapshot(db)

    found = diff(before, after)
    assert [d.describe() for d in found.differences] == [
        "data of items: 30 rows, but their content differs"
    ]


def test_empty_string_and_null_differ(db: Connection) -> None:
    db.exec_driver_sql("CREATE TABLE t (a text, b text); INSERT INTO t VALUES (NULL, '')")
    before = take_snapshot(db)
    db.exec_driver_sql("UPDATE t SET a = '', b = NULL")

    assert not diff(before, take_snapshot(db)).ok


def test_excluded_columns_leave_the_fingerprint(db: Connection) -> None:
    volatile = {"items": ["seen_at"]}
    before = take_snapshot(db, exclude_columns=volatile)
    db.exec_driver_sql("UPDATE items SET seen_at = now()")

    after = take_snapshot(db, exclude_columns=volatile)
    assert diff(before, after).ok
    items = after.table("items")
    assert items is not None and items.excluded_columns == ("seen_at",)
    assert not diff(take_snapshot(db), before).ok


def test_session_settings_do_not_change_fingerprints(db: Connection) -> None:
    utc = take_snapshot(db)
    db.exec_driver_sql(
        "SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'German, DMY'; SET extra_float_digits = 3"
    )

    assert diff(utc, take_snapshot(db)).ok
    # ... and the caller's settings are given back.
    assert db.exec_driver_sql("SHOW TimeZone").scalar_one() == "Asia/Tokyo"
    assert db.exec_driver_sql("SHOW DateStyle").scalar_one() == "German, DMY"


def test_snapshot_survives_json(db: Connection) -> None:
    snap = take_snapshot(db)
    text_form = json.dumps(snap.to_json())

    back = Snapshot.from_json(json.loads(text_form))
    assert back == snap
    assert back.server_version == snap.server_version
    assert json.loads(text_form)["tables"]["items"]["rows"] == 30


@pytest.mark.parametrize("data", [{}, {"format": "other"}, [], {"format": "lossless.snapshot/1"}])
def test_from_json_rejects_what_is_not_a_snapshot(data: object) -> None:
    with pytest.raises(UsageError):
        Snapshot.from_json(data)  # type: ignore[arg-type]


def test_snapshot_reads_inside_a_callers_transaction(db: Connection) -> None:
    with db.engine.connect() as other:
        other.execute(text("INSERT INTO owners (name) VALUES ('carl')"))
        snap = take_snapshot(other)
        other.rollback()
    owners = snap.table("owners")
    assert owners is not None and owners.rows == 3
    after = take_snapshot(db).table("owners")
    assert after is not None and after.rows == 2


def test_identifiers_that_need_quoting(conn: Connection) -> None:
    conn.exec_driver_sql(
        'CREATE TABLE "Odd Table" ("Select" int PRIMARY KEY, "a""quote" text, "ÉTÉ" jsonb);'
        """INSERT INTO "Odd Table" VALUES (1, 'x', '{}'), (2, NULL, NULL)"""
    )
    before = take_snapshot(conn)
    capture = capture_rows(conn, "odd")
    conn.exec_driver_sql('UPDATE "Odd Table" SET "ÉTÉ" = \'{}\' WHERE "Select" = 2')

    table = before.table("Odd Table")
    assert table is not None and {c.name for c in table.columns} == {"Select", 'a"quote', "ÉTÉ"}
    assert [d.describe() for d in diff(before, take_snapshot(conn)).differences] == [
        "data of Odd Table: 2 rows, but their content differs"
    ]
    (changes,) = compare_rows(conn, capture, capture_rows(conn, "odd2"))
    assert changes.samples == ("Select=2",)
    assert [(c.column, c.rows) for c in changes.columns] == [("ÉTÉ", 1)]
