"""User triggers are not fired by the operations' own writes; rows hidden by row-level
security are refused, never half-moved."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine

from tests.ops.helpers import execute, offline_sql
from tests.ops.hostile.harness import (
    DROPPING,
    as_role,
    assert_exact,
    assert_refused,
    role,
    setup,
    take,
)
from toolkit.verify.fingerprint import fingerprint_diff

TOUCH = """
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN NEW.created_at := now(); RETURN NEW; END$$;
CREATE TRIGGER tr_touch_sprints BEFORE UPDATE ON sprints
    FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER tr_touch_tasks BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION touch();
"""

AUDIT = """
CREATE TABLE audit (tbl text NOT NULL, n bigint NOT NULL);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO audit VALUES (TG_TABLE_NAME, 1); RETURN NULL; END$$;
CREATE TRIGGER tr_audit_sprints AFTER UPDATE ON sprints
    FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER tr_audit_tasks AFTER UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER tr_audit_stmt AFTER INSERT OR UPDATE OR DELETE ON sprints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_row();
ALTER TABLE tasks DISABLE TRIGGER tr_audit_tasks;
"""


@pytest.mark.parametrize(
    "operation",
    [
        "stash",
        "promote",
        "move_to_child",
    ],
)
@pytest.mark.parametrize("triggers", ["before update", "after update audit"])
def test_user_triggers_do_not_fire(lossless_engine: Engine, triggers: str, operation: str) -> None:
    setup(lossless_engine, TOUCH if triggers == "before update" else AUDIT)

    assert_exact(lossless_engine, DROPPING[operation]())


HIDDEN = """
GRANT CREATE ON SCHEMA public TO "{role}";
ALTER TABLE goals OWNER TO "{role}";
ALTER TABLE sprints OWNER TO "{role}";
ALTER TABLE tasks OWNER TO "{role}";
ALTER TABLE sprints ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY even_sprints ON sprints USING (mod(right(title, 1)::int, 2) = 0);
"""


@pytest.mark.parametrize(
    "operation",
    [
        "stash",
        "promote",
        "move_to_child",
    ],
)
def test_rows_hidden_by_row_security_are_refused(lossless_engine: Engine, operation: str) -> None:
    with role(lossless_engine, "owner") as owner:
        setup(lossless_engine, HIDDEN.format(role=owner))

        assert_refused(
            lossless_engine,
            as_role(owner, DROPPING[operation]()),
            "row-level security.*even_sprints",
        )


@pytest.mark.parametrize("operation", ["stash", "promote", "move_to_child"])
def test_rows_hidden_by_row_security_are_refused_offline(
    lossless_engine: Engine, operation: str
) -> None:
    from tests.ops.hostile.test_attached import OFFLINE_ROUND_TRIPS

    up, _ = OFFLINE_ROUND_TRIPS[operation]
    script = offline_sql(lambda op: op.invoke(up))
    with role(lossless_engine, "owner") as owner:
        setup(lossless_engine, HIDDEN.format(role=owner))
        before = take(lossless_engine)
        with lossless_engine.connect() as conn:
            raw = conn.execution_options(isolation_level="AUTOCOMMIT")
            with pytest.raises(psycopg.errors.CheckViolation, match="row-level security"):
                execute(raw, f'BEGIN;\nSET LOCAL ROLE "{owner}";\n{script}COMMIT;')
            execute(raw, "ROLLBACK")
        assert fingerprint_diff(before, take(lossless_engine)) == []
