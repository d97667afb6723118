"""The generic seeder, on schemas it has never seen: constraints respected, set-based, stable."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from toolkit.postgres import Server, scratch_database
from toolkit.postgres.url import sqlalchemy_url
from toolkit.seeding import seed_database
from toolkit.verify import capture_rows, take_snapshot

SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
CREATE TABLE authors (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    email varchar(12),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id uuid NOT NULL REFERENCES authors (id),
    reviewer_id uuid REFERENCES authors (id),
    status text NOT NULL CHECK (status IN ('draft', 'published', 'it''s done')),
    rating numeric(3, 1) CHECK (rating BETWEEN 0 AND 5),
    pinned boolean NOT NULL,
    due date,
    metadata jsonb,
    settings jsonb NOT NULL,
    feeling mood NOT NULL,
    tags text[],
    code char(2),
    parent_id bigint REFERENCES notes (id),
    created_at timestamp NOT NULL
);
CREATE TABLE note_tags (
    note_id bigint NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    tag text NOT NULL,
    PRIMARY KEY (note_id, tag)
);
CREATE TABLE note_stats (note_id bigint PRIMARY KEY REFERENCES notes (id), views int NOT NULL);
"""


@pytest.fixture
def db(conn: Connection) -> Connection:
    conn.exec_driver_sql(SCHEMA)
    return conn


def scalar(conn: Connection, query: str) -> object:
    return conn.exec_driver_sql(query).scalar_one()


def test_every_table_gets_rows_parents_first(db: Connection) -> None:
    report = seed_database(db, rows=30, seed=0)

    assert [(t.name, t.rows) for t in report.tables] == [
        ("authors", 30),
        ("notes", 30),
        ("note_stats", 30),
        ("note_tags", 30),
    ]
    assert report.total == 120 and report.notes == ()
    assert scalar(db, "SELECT count(*) FROM notes") == 30


def test_values_respect_types_and_checks(db: Connection) -> None:
    seed_database(db, rows=30, seed=0)

    statuses = db.exec_driver_sql("SELECT DISTINCT status FROM notes ORDER BY 1").scalars().all()
    assert statuses == ["draft", "it's done", "published"]
    assert scalar(db, "SELECT count(DISTINCT feeling) FROM notes") == 3
    assert scalar(db, "SELECT max(length(email)) <= 12 FROM authors") is True
    assert scalar(db, "SELECT bool_and(rating BETWEEN 0 AND 5) FROM notes") is True
    assert scalar(db, "SELECT count(*) FROM notes WHERE settings IS NULL") == 0


def test_edge_cases_are_covered(db: Connection) -> None:
    seed_database(db, rows=30, seed=0)

    kinds = db.exec_driver_sql(
        "SELECT count(*) FILTER (WHERE metadata IS NULL),"
        "       count(*) FILTER (WHERE metadata = '{}'),"
        "       count(*) FILTER (WHERE jsonb_typeof(metadata -> 'nested') = 'object'),"
        "       count(*) FILTER (WHERE reviewer_id IS NULL),"
        "       count(*) FILTER (WHERE reviewer_id IS NOT NULL),"
        "       count(*) FILTER (WHERE due IS NULL),"
        "       count(*) - count(DISTINCT created_at)"
        " FROM notes"
    ).one()
    assert all(k > 0 for k in kinds), kinds
    unicode = scalar(db, "SELECT count(*) FROM authors WHERE name ~ '[^[:ascii:]]'")
    assert isinstance(unicode, int) and unicode > 0


def test_foreign_keys_to_itself_are_filled_afterwards(db: Connection) -> None:
    seed_database(db, rows=30, seed=0)

    linked = scalar(db, "SELECT count(*) FROM notes WHERE parent_id IS NOT NULL")
    assert linked == 20  # two rows in three get a parent


def test_same_seed_same_data_other_seed_other_data(lossless_server: Server) -> None:
    def fingerprints(seed: int) -> dict[str, int]:
        with scratch_database(lossless_server.url, prefix="lossless_test") as url:
            engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
            with engine.connect() as conn:
                conn.exec_driver_sql(SCHEMA)
                seed_database(conn, rows=10, seed=seed)
                snap = take_snapshot(conn)
                conn.rollback()
            engine.dispose()
        return {t.name: t.fingerprint for t in snap.tables}

    first, again, other = fingerprints(1), fingerprints(1), fingerprints(2)
    assert first == again
    assert first["authors"] != other["authors"] and first["notes"] != other["notes"]


def test_a_cycle_through_nullable_keys_is_broken_and_filled(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE a (id int PRIMARY KEY, b_id int);"
        "CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a (id));"
        "ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id);"
    )

    report = seed_database(conn, rows=9, seed=0)

    assert [(t.name, t.rows) for t in report.tables] == [("a", 9), ("b", 9)]
    assert scalar(conn, "SELECT count(*) FROM a WHERE b_id IS NOT NULL") == 6


def test_what_cannot_be_seeded_is_noted_not_raised(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE shapes (id int PRIMARY KEY, p point NOT NULL);"
        "CREATE DOMAIN negative AS int CHECK (VALUE < 0);"
        "CREATE TABLE odd (id int PRIMARY KEY, n negative NOT NULL);"
        "CREATE TABLE fine (id int PRIMARY KEY, p point);"
        "CREATE TABLE selfish (id int PRIMARY KEY, me int NOT NULL REFERENCES selfish (id));"
    )

    report = seed_database(conn, rows=5, seed=0)

    rows = {t.name: t.rows for t in report.tables}
    assert rows == {"fine": 5, "odd": 0, "selfish": 0, "shapes": 0}
    notes = dict(n.split(": ", 1) for n in report.notes)
    assert notes["shapes"] == "no generator for p (point)"
    assert notes["odd"].startswith("insert failed: ")
    assert notes["selfish"] == "NOT NULL foreign key to itself; left empty"


def test_a_failed_table_does_not_abort_the_callers_transaction(lossless_server: Server) -> None:
    with scratch_database(lossless_server.url, prefix="lossless_test") as url:
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "CREATE DOMAIN negative AS int CHECK (VALUE < 0);"
                "CREATE TABLE odd (id int PRIMARY KEY, n negative NOT NULL);"
                "CREATE TABLE fine (id int PRIMARY KEY);"
            )
            report = seed_database(conn, rows=4, seed=0)
            conn.commit()
            assert {t.name: t.rows for t in report.tables} == {"fine": 4, "odd": 0}
            assert conn.exec_driver_sql("SELECT count(*) FROM fine").scalar_one() == 4
        engine.dispose()


def test_identifiers_that_need_quoting(conn: Connection) -> None:
    conn.exec_driver_sql(
        'CREATE TABLE "Parent Table" ("Key" int PRIMARY KEY, "a""b" text NOT NULL);'
        'CREATE TABLE "child" ("id" int PRIMARY KEY,'
        ' "Parent" int NOT NULL REFERENCES "Parent Table" ("Key"),'
        ' "g" int NOT NULL, "lossless_n" text)'
    )

    report = seed_database(conn, rows=6, seed=0)

    assert {t.name: t.rows for t in report.tables} == {"Parent Table": 6, "child": 6}
    orphans = scalar(
        conn,
        "SELECT count(*) FROM child c WHERE NOT EXISTS"
        ' (SELECT 1 FROM "Parent Table" p WHERE p."Key" = c."Parent")',
    )
    assert orphans == 0


def test_the_toolkits_own_tables_are_not_user_data(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE lossless_stash (kind text NOT NULL, table_name text NOT NULL,"
        " column_name text NOT NULL, row_key jsonb NOT NULL, payload jsonb);"
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"
    )

    report = seed_database(conn, rows=5, seed=0)

    assert [(t.name, t.rows) for t in report.tables] == [("items", 5)]
    assert scalar(conn, "SELECT count(*) FROM lossless_stash") == 0
    assert take_snapshot(conn).table_names == ("items",)
    assert [t.name for t in capture_rows(conn, "s0").tables] == ["items"]


def test_a_cycle_closed_by_a_nullable_key_is_broken_there(conn: Connection) -> None:
    # "accounts" sorts first but needs "users"; only users.main_account_id can wait.
    conn.exec_driver_sql(
        "CREATE TABLE users (id int PRIMARY KEY, main_account_id int);"
        "CREATE TABLE accounts (id int PRIMARY KEY,"
        " owner_id int NOT NULL REFERENCES users (id));"
        "ALTER TABLE users ADD FOREIGN KEY (main_account_id) REFERENCES accounts (id);"
    )

    report = seed_database(conn, rows=12, seed=0)

    assert [(t.name, t.rows, t.note) for t in report.tables] == [
        ("users", 12, ""),
        ("accounts", 12, ""),
    ]
    assert scalar(conn, "SELECT count(*) FROM users WHERE main_account_id IS NOT NULL") == 8


def test_a_cycle_of_not_null_keys_is_named(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE a (id int PRIMARY KEY, b_id int NOT NULL);"
        "CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a (id));"
        "CREATE TABLE c (id int PRIMARY KEY, b_id int NOT NULL REFERENCES b (id));"
        "ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id);"
    )

    report = seed_database(conn, rows=5, seed=0)

    assert report.total == 0
    assert dict(n.split(": ", 1) for n in report.notes) == {
        "a": "NOT NULL foreign keys form a cycle (a -> b -> a); left empty",
        "b": "NOT NULL foreign keys form a cycle (b -> a -> b); left empty",
        "c": "NOT NULL foreign keys need rows in b, which stays empty; left empty",
    }


POLYMORPHIC = """
CREATE TABLE cards (id int PRIMARY KEY, last4 text NOT NULL);
CREATE TABLE banks (id int PRIMARY KEY, iban text NOT NULL);
CREATE TABLE payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    card_id int REFERENCES cards (id),
    bank_id int REFERENCES banks (id),
    amount int NOT NULL CHECK (amount >= 1000 AND amount < 5000),
    CHECK ((kind = 'card') = (card_id IS NOT NULL)),
    CHECK ((kind = 'bank') = (bank_id IS NOT NULL))
);
"""


def test_polymorphic_checks_get_rows_in_every_branch(conn: Connection) -> None:
    conn.exec_driver_sql(POLYMORPHIC)

    report = seed_database(conn, rows=60, seed=0)

    assert {t.name: t.rows for t in report.tables}["payments"] == 60, report.notes
    branches = dict(
        conn.exec_driver_sql(
            "SELECT kind, count(*) FROM payments WHERE kind IN ('card', 'bank') GROUP BY kind"
        ).all()
    )
    assert branches["card"] > 5 and branches["bank"] > 5, branches
    assert scalar(conn, "SELECT count(*) FROM payments WHERE amount = 1000") > 0
    assert scalar(conn, "SELECT min(amount) >= 1000 FROM payments") is True


def test_literal_values_of_an_enum_like_check_and_the_polymorphic_one(conn: Connection) -> None:
    conn.exec_driver_sql(
        POLYMORPHIC.replace(
            "kind text NOT NULL,", "kind text NOT NULL CHECK (kind IN ('card', 'bank')),"
        )
    )

    seed_database(conn, rows=40, seed=3)

    counts = conn.exec_driver_sql(
        "SELECT count(*) FILTER (WHERE kind = 'card'), count(*) FILTER (WHERE kind = 'bank'),"
        " count(*) FROM payments"
    ).one()
    assert counts[0] > 5 and counts[1] > 5 and counts[2] == 40, counts


def test_a_table_with_only_a_serial_id_gets_rows_and_so_do_its_children(
    conn: Connection,
) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE batches (id serial PRIMARY KEY);"
        "CREATE TABLE jobs (id int PRIMARY KEY, batch_id int NOT NULL REFERENCES batches (id))"
    )

    report = seed_database(conn, rows=7, seed=0)

    assert [(t.name, t.rows, t.note) for t in report.tables] == [
        ("batches", 7, ""),
        ("jobs", 7, ""),
    ]
    assert scalar(conn, "SELECT count(DISTINCT batch_id) FROM jobs") > 1


def test_nullable_keys_are_null_and_set_in_every_combination(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE people (id int PRIMARY KEY);"
        "CREATE TABLE tasks (id int PRIMARY KEY,"
        " owner_id int REFERENCES people (id), reviewer_id int REFERENCES people (id),"
        " team_id int REFERENCES people (id))"
    )

    seed_database(conn, rows=100, seed=0)

    combinations = conn.exec_driver_sql(
        "SELECT owner_id IS NULL, reviewer_id IS NULL, team_id IS NULL, count(*)"
        " FROM tasks GROUP BY 1, 2, 3"
    ).all()
    assert len(combinations) == 8, combinations


def test_values_repeat_outside_unique_keys(db: Connection) -> None:
    seed_database(db, rows=30, seed=0)

    # Rows 5, 10, ... repeat the row before them, parents included; keys stay unique.
    repeated = scalar(
        db,
        "SELECT count(*) FROM (SELECT author_id, reviewer_id, status, rating, due, tags"
        " FROM notes GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1) AS d",
    )
    assert isinstance(repeated, int) and repeated > 0
    assert scalar(db, "SELECT count(*) - count(DISTINCT email) FROM authors") > 0
    assert scalar(db, "SELECT count(*) - count(DISTINCT name) FROM authors") == 0


def test_an_expression_unique_index_keeps_its_columns_distinct(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);"
        "CREATE UNIQUE INDEX users_email_lower ON users (lower(email))"
    )

    report = seed_database(conn, rows=25, seed=0)

    assert [(t.name, t.rows, t.note) for t in report.tables] == [("users", 25, "")]


def test_constants_that_do_not_fit_the_column_are_dropped_not_the_table(
    conn: Connection,
) -> None:
    conn.exec_driver_sql(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');"
        "CREATE TABLE moods (id int PRIMARY KEY, m mood NOT NULL CHECK ((m)::text <> 'angry'),"
        " code varchar(2) NOT NULL CHECK (code <> 'toolong'))"
    )

    report = seed_database(conn, rows=8, seed=0)

    assert [(t.name, t.rows, t.note) for t in report.tables] == [("moods", 8, "")]
