"""Keep user triggers from firing on an operation's own writes, and restore them exactly.

An operation's bulk ``UPDATE`` is not an application write: a ``BEFORE UPDATE`` trigger
setting ``updated_at`` would rewrite that column on every row, an ``AFTER UPDATE`` audit
trigger would log every row the operation touched. ``quiet(table)`` disables, by name, the
user triggers of ``table`` that are enabled (any of ``ENABLE``, ``ENABLE REPLICA``,
``ENABLE ALWAYS``) and remembers each one's mode in a transaction-local setting;
``restore(table)`` puts every one back in its own mode (nothing, if the operation dropped
the table meanwhile). Triggers already disabled stay
disabled; internal triggers (foreign keys) are never touched, so referential integrity is
checked as usual.

Why this way:

- ``ALTER TABLE ... DISABLE TRIGGER`` takes a ``SHARE ROW EXCLUSIVE`` lock, which the
  operations already hold on the tables they write (they take it for their checks), and it
  only changes ``pg_trigger.tgenabled``: no table rewrite, no scan. Inside the operation's
  transaction, no other session ever sees the triggers disabled (the change commits with
  the operation, after ``restore``) and none can write in between (the lock).
- ``SET session_replication_role = replica`` would need a superuser and would also skip
  the foreign-key checks and still fire ``ENABLE ALWAYS`` triggers; ``DISABLE TRIGGER
  USER`` followed by ``ENABLE TRIGGER USER`` would turn disabled, ``REPLICA`` and
  ``ALWAYS`` triggers into plain enabled ones.
- The same two ``DO`` blocks run online and offline: the modes are read when the script
  runs and passed between the blocks through ``set_config(..., true)``, which ends with
  the transaction.
"""

from __future__ import annotations

from psycopg import sql

from toolkit.sql.checks import do_block
from toolkit.sql.idents import Sql, literal, qualified, render
from toolkit.sql.lookups import regclass

_SETTING = "lossless.quiet_triggers"


def _key(table: str, schema: str | None) -> str:
    return render(qualified(table, schema))


def quiet(table: str, schema: str | None = None) -> Sql:
    """Disable the enabled user triggers of ``table`` for the rest of the transaction
    (until ``restore``); their modes are kept in a transaction-local setting."""
    return do_block(
        sql.SQL(
            "DECLARE t record; kept jsonb := coalesce(nullif("
            "current_setting({setting}, true), ''), '{{}}')::jsonb; mine jsonb := '{{}}'; BEGIN"
            " FOR t IN SELECT tgname, tgenabled::text AS mode FROM pg_trigger"
            " WHERE tgrelid = {rel} AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname"
            " LOOP mine := mine || jsonb_build_object(t.tgname, t.mode);"
            " EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', {rel}, t.tgname); END LOOP;"
            " PERFORM set_config({setting}, (kept || jsonb_build_object({key}, mine))::text, true);"
            " END"
        ).format(
            setting=literal(_SETTING), rel=regclass(table, schema), key=literal(_key(table, schema))
        )
    )


def restore(table: str, schema: str | None = None) -> Sql:
    """Re-enable the triggers ``quiet(table)`` disabled, each in its original mode."""
    return do_block(
        sql.SQL(
            "DECLARE t record; kept jsonb := coalesce(nullif("
            "current_setting({setting}, true), ''), '{{}}')::jsonb; BEGIN IF {rel} IS NOT NULL THEN"
            " FOR t IN SELECT key AS name, value AS mode"
            " FROM jsonb_each_text(coalesce(kept -> {key}, '{{}}')) LOOP"
            " EXECUTE format('ALTER TABLE %s ENABLE %s TRIGGER %I', {rel},"
            " CASE t.mode WHEN 'R' THEN 'REPLICA' WHEN 'A' THEN 'ALWAYS' ELSE '' END, t.name);"
            " END LOOP; END IF;"
            " PERFORM set_config({setting}, (kept - {key})::text, true); END"
        ).format(
            setting=literal(_SETTING), rel=regclass(table, schema), key=literal(_key(table, schema))
        )
    )


def saved_modes(table: str, schema: str | None = None) -> Sql:
    """A jsonb expression: ``{trigger name: mode}`` of the triggers ``quiet(table)``
    disabled in this transaction (``{}`` if none): what a record of the table must say."""
    return sql.SQL(
        "coalesce(nullif(current_setting({setting}, true), '')::jsonb -> {key}, '{{}}')"
    ).format(setting=literal(_SETTING), key=literal(_key(table, schema)))
