"""The building blocks on their own: capture what is attached to a column and re-create
it exactly; find what depends on a column and cannot be carried."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import Connection, text

from tests.ops.helpers import execute
from tests.ops.hostile.harness import BASE
from tests.ops.hostile.test_attached import ATTACHED
from tests.ops.hostile.test_refusals import DEPENDENTS
from toolkit.sql.attached import capture_attached, collation_of, replay_attached, statements_of
from toolkit.sql.dependents import blocking_dependents, describe, row_security_hides
from toolkit.sql.idents import literal, render
from toolkit.sql.triggers import quiet, restore
from toolkit.verify.fingerprint import fingerprint, fingerprint_diff


def query(conn: Connection, statement: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(text(render(statement).replace(":", "\\:")))]


def everything_attached(conn: Connection) -> None:
    execute(conn, BASE)
    for name, statement in ATTACHED.items():
        # Foreign keys and the default are the column's definition, recorded elsewhere.
        if name not in ("second foreign key elsewhere", "default") and "_fkey" not in statement:
            execute(conn, statement)
    execute(
        conn,
        "ALTER TABLE sprints ALTER goal_id SET STORAGE PLAIN;"
        " ALTER TABLE sprints ALTER goal_id SET (n_distinct = 3);"
        " COMMENT ON INDEX ix_sprints_goal IS 'by goal';"
        " COMMENT ON CONSTRAINT ck_sprints_goal ON sprints IS 'never zero';"
        " ALTER TABLE sprints CLUSTER ON ix_sprints_goal;"
        " ALTER STATISTICS st_sprints SET STATISTICS 55;"
        " COMMENT ON STATISTICS st_sprints IS 'pairs'",
    )


def drop_and_re_add(conn: Connection, attached: object, *, offline: bool) -> None:
    """What an operation does: keep the values, drop, re-add, fill, re-create."""
    assert collation_of(attached) is None  # uuid has none; see the collation case
    execute(
        conn,
        "CREATE TABLE kept AS SELECT id, goal_id FROM sprints;"
        " ALTER TABLE sprints DROP COLUMN goal_id;"
        " ALTER TABLE sprints ADD COLUMN goal_id uuid;"
        " UPDATE sprints s SET goal_id = k.goal_id FROM kept k WHERE k.id = s.id;"
        " ALTER TABLE sprints ALTER goal_id SET NOT NULL;"
        " ALTER TABLE sprints ADD CONSTRAINT sprints_goal_id_fkey FOREIGN KEY (goal_id)"
        " REFERENCES goals (id); DROP TABLE kept",
    )
    if offline:
        record = sql.SQL("{}::jsonb").format(literal(json.dumps(attached)))
        execute(conn, render(replay_attached(record)))
    else:
        for statement in statements_of(attached):
            execute(conn, statement)


@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline-replay"])
def test_everything_attached_comes_back(conn: Connection, offline: bool) -> None:
    everything_attached(conn)
    before = fingerprint(conn)
    [(attached,)] = query(conn, capture_attached("sprints", "goal_id"))

    drop_and_re_add(conn, attached, offline=offline)

    after = fingerprint(conn)
    assert fingerprint_diff(before.without("column order"), after.without("column order")) == []
    assert len(statements_of(attached)) == 17


def test_statements_are_qualified_whatever_the_search_path(conn: Connection) -> None:
    execute(conn, "CREATE SCHEMA app; SET search_path = app;" + BASE)
    execute(conn, "CREATE INDEX ix_goal ON sprints (goal_id)")
    execute(conn, "COMMENT ON COLUMN sprints.goal_id IS 'x'; SET search_path = public")
    [(attached,)] = query(conn, capture_attached("sprints", "goal_id", "app"))

    assert statements_of(attached) == [
        "CREATE INDEX ix_goal ON app.sprints USING btree (goal_id)",
        "COMMENT ON COLUMN app.sprints.goal_id IS 'x'",
    ]
    assert collation_of(attached) is None


def test_a_collation_is_recorded_qualified(conn: Connection) -> None:
    execute(conn, BASE + ATTACHED["collation"])
    [(attached,)] = query(conn, capture_attached("sprints", "goal_id"))

    assert collation_of(attached) == 'pg_catalog."C"'


def test_a_bare_column_has_nothing_attached(conn: Connection) -> None:
    execute(conn, BASE)
    [(attached,)] = query(conn, capture_attached("sprints", "title"))

    assert attached == {"collation": None, "statements": []}


@pytest.mark.parametrize("dependent", list(DEPENDENTS))
def test_each_blocking_dependent_is_named(conn: Connection, dependent: str) -> None:
    sql, names = DEPENDENTS[dependent]
    execute(conn, BASE)
    execute(conn, sql)

    found = query(conn, blocking_dependents("sprints", "goal_id"))

    assert found
    assert any(name in describe(found) for name in names.split("|"))


def test_attached_objects_and_own_foreign_key_do_not_block(conn: Connection) -> None:
    everything_attached(conn)

    assert query(conn, blocking_dependents("sprints", "goal_id")) == []


def test_primary_key_and_referencing_foreign_keys_block(conn: Connection) -> None:
    execute(conn, BASE)

    found = query(conn, blocking_dependents("sprints", "id"))

    assert found == [
        ("foreign key", "tasks_sprint_id_fkey on tasks"),
        ("primary key", "sprints_pkey on sprints"),
    ]


def test_row_security_that_applies_to_the_current_role(conn: Connection) -> None:
    execute(
        conn,
        BASE + "ALTER TABLE sprints ENABLE ROW LEVEL SECURITY;"
        " CREATE POLICY p_even ON sprints USING (true); CREATE ROLE rls_probe_role;"
        " GRANT SELECT ON sprints TO rls_probe_role",
    )
    try:
        assert query(conn, row_security_hides("sprints")) == []  # superuser
        execute(conn, "ALTER TABLE sprints FORCE ROW LEVEL SECURITY")
        assert query(conn, row_security_hides("sprints")) == []  # still superuser
        execute(conn, "SET ROLE rls_probe_role")
        assert query(conn, row_security_hides("sprints")) == [("rls_probe_role", "p_even")]
    finally:
        execute(conn, "RESET ROLE; DROP OWNED BY rls_probe_role; DROP ROLE rls_probe_role")


TRIGGERS = """
CREATE TABLE audit (n int);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO audit VALUES (1); RETURN NULL; END$$;
CREATE TRIGGER t_on AFTER UPDATE ON sprints FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER t_off AFTER UPDATE ON sprints FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER t_replica AFTER UPDATE ON sprints FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER t_always AFTER UPDATE ON sprints FOR EACH STATEMENT EXECUTE FUNCTION audit_row();
ALTER TABLE sprints DISABLE TRIGGER t_off, ENABLE REPLICA TRIGGER t_replica,
    ENABLE ALWAYS TRIGGER t_always;
"""


def trigger_modes(conn: Connection) -> dict[str, str]:
    found = query(
        conn,
        sql.SQL(
            "SELECT tgname, tgenabled::text FROM pg_trigger"
            " WHERE tgrelid = 'sprints'::regclass AND NOT tgisinternal"
        ),
    )
    return {name: mode for name, mode in found}


def test_quiet_triggers_do_not_fire_and_come_back_in_their_modes(conn: Connection) -> None:
    execute(conn, BASE + TRIGGERS)
    modes = trigger_modes(conn)
    assert modes == {"t_on": "O", "t_off": "D", "t_replica": "R", "t_always": "A"}

    with conn.engine.begin() as tx:
        tx.execute(text(render(quiet("sprints")).replace(":", "\\:")))
        assert set(trigger_modes(tx).values()) == {"D"}
        tx.exec_driver_sql("UPDATE sprints SET title = title || '!'")
        tx.execute(text(render(restore("sprints")).replace(":", "\\:")))

    assert trigger_modes(conn) == modes
    assert query(conn, sql.SQL("SELECT count(*) FROM audit")) == [(0,)]
    conn.exec_driver_sql("UPDATE sprints SET title = title WHERE title = 'sprint 1!'")
    assert query(conn, sql.SQL("SELECT count(*) FROM audit")) == [(2,)]  # t_on, t_always
