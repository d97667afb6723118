"""Pure SQL builders for the operations: each function returns SQL text, none does I/O.

Identifiers are quoted with SQLAlchemy's PostgreSQL identifier preparer and string
literals rendered by its literal processor (``toolkit.sql.idents``); nothing here formats a
raw name into SQL. The same text serves online execution and offline (``--sql``) output.
"""
