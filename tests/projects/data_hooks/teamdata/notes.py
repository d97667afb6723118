"""Rows the team wants in every round trip after 0001_initial: a note by a known author."""

from sqlalchemy import Connection, text


def add(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO authors (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Ada');"
            "INSERT INTO notes (author_id, title, status, due)"
            " VALUES ('00000000-0000-0000-0000-00000000000a', 'Kept', 'published', '2024-01-31')"
        )
    )
