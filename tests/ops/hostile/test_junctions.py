"""Collapsing junctions that real schemas have: payload columns, duplicate pairs, links
added from sessions in other time zones, a junction that was not made by promote."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine, text

from tests.ops.hostile.harness import (
    assert_exact,
    assert_refused,
    assert_refused_offline,
    exact,
    run,
    run_offline,
    setup,
    take,
)
from toolkit.ops import CollapseJunctionToFkOp, PromoteFkToJunctionOp

#: A hand-made junction sprint_goals(sprint_id, goal_id) with its own names; sprints keeps
#: no goal_id column (the collapse adds it).
JUNCTION = """
ALTER TABLE sprints DROP COLUMN goal_id;
CREATE TABLE sprint_goals (
    id uuid PRIMARY KEY, sprint_id uuid NOT NULL REFERENCES sprints (id) ON DELETE CASCADE,
    goal_id uuid NOT NULL REFERENCES goals (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sprint_goals_pair UNIQUE (sprint_id, goal_id));
CREATE INDEX ix_sprint_goals_goal ON sprint_goals (goal_id);
INSERT INTO sprint_goals (id, sprint_id, goal_id, created_at)
SELECT md5('link' || s || g)::uuid, md5('sprint' || s)::uuid, md5('goal' || g)::uuid,
       '2024-01-01 00:00+00'::timestamptz + (s * 10 + g) * interval '1 minute'
FROM generate_series(1, 6) s, generate_series(1, 3) g WHERE g <= mod(s, 3) + 1;
"""


def collapse(**extra: object) -> CollapseJunctionToFkOp:
    return CollapseJunctionToFkOp(
        "sprint_goals",
        table="sprints",
        column="goal_id",
        owner_column="sprint_id",
        referent_column="goal_id",
        referent_table="goals",
        **extra,  # type: ignore[arg-type]
    )


def test_hand_made_junction_round_trip_is_exact(lossless_engine: Engine) -> None:
    setup(lossless_engine, JUNCTION)

    assert_exact(lossless_engine, collapse(keep_extra_links=True))


PAYLOAD = "ALTER TABLE sprint_goals ADD COLUMN weight int NOT NULL DEFAULT 1, ADD note text"

PROMOTE = PromoteFkToJunctionOp(
    "sprints",
    "goal_id",
    junction="sprint_goals",
    owner_column="sprint_id",
    referent_column="goal_id",
)


def made_by_promote(engine: Engine, *sql: str) -> None:
    """sprint_goals made by the toolkit's promote (the stash holds sprints.goal_id's record),
    then ``sql``."""
    setup(engine)
    run(engine, PROMOTE)
    setup_more(engine, *sql)


def setup_more(engine: Engine, *sql: str) -> None:
    with engine.connect() as conn:
        raw = conn.execution_options(isolation_level="AUTOCOMMIT")
        for script in sql:
            raw.exec_driver_sql(script)


def test_payload_columns_are_refused_unless_declared(lossless_engine: Engine) -> None:
    # A promote made the junction, so this collapse is its inverse and records nothing:
    # the payload would go with the junction.
    made_by_promote(lossless_engine, PAYLOAD)

    assert_refused(
        lossless_engine,
        collapse(drop_payload=("note",)),
        r"^refused: collapse_junction_to_fk: sprint_goals has payload column\(s\) weight that"
        r" the collapse would drop with it; .* keep_extra_links=True .* drop_payload=",
    )
    assert_refused(lossless_engine, collapse(), "column\\(s\\) weight, note ")


def test_payload_columns_are_refused_offline(lossless_engine: Engine) -> None:
    made_by_promote(lossless_engine, PAYLOAD)

    assert_refused_offline(
        lossless_engine,
        collapse(type_="uuid", owner_key="id"),
        "sprint_goals has payload column\\(s\\) weight, note that the collapse would drop",
    )


#: Payload of every kind, arrays with their own lower bounds among them.
RICH_PAYLOAD = (
    PAYLOAD,
    "ALTER TABLE sprint_goals ADD COLUMN tags int[] DEFAULT '[0:1]={1,2}',"
    " ADD COLUMN extra jsonb, ADD COLUMN ratio float8",
    "UPDATE sprint_goals SET weight = 7, note = 'n' || id, tags = '[-2:0]={7,8,9}',"
    " extra = '{\"a\": [1, {\"b\": null}]}', ratio = 0.1 + 0.2 WHERE goal_id = md5('goal2')::uuid",
)


@pytest.mark.parametrize("keep_extra_links", [False, True])
def test_payload_of_a_recorded_junction_comes_back_exactly(
    lossless_engine: Engine, keep_extra_links: bool
) -> None:
    # A junction the toolkit did not make is recorded whole: payload columns are not a
    # loss, they come back with every link (arrays keep their bounds).
    setup(lossless_engine, JUNCTION, *RICH_PAYLOAD)
    if not keep_extra_links:  # then only the first link of each sprint survives
        setup_more(
            lossless_engine,
            "DELETE FROM sprint_goals WHERE goal_id <> md5('goal1')::uuid"
            " AND sprint_id IN (SELECT sprint_id FROM sprint_goals GROUP BY 1"
            " HAVING count(*) > 1)",
        )

    assert_exact(lossless_engine, collapse(keep_extra_links=keep_extra_links), PROMOTE)


def test_declared_payload_is_dropped_and_counted(lossless_engine: Engine) -> None:
    setup(lossless_engine, JUNCTION, PAYLOAD)

    [result] = run(lossless_engine, collapse(drop_payload=("weight", "note")))

    # weight has a value in every link (NOT NULL DEFAULT 1): all 12 links lose something.
    assert result.counts["payload_dropped"] == 12
    assert "payload column(s) weight, note dropped with sprint_goals: 12 link(s)" in " ".join(
        result.notes
    )


REPEATED_PAIR = (
    "ALTER TABLE sprint_goals DROP CONSTRAINT sprint_goals_pair;"
    " INSERT INTO sprint_goals SELECT md5('dup')::uuid, sprint_id, goal_id,"
    " created_at + interval '1 day' FROM sprint_goals ORDER BY id LIMIT 1"
)


def test_repeated_pairs_with_keep_extra_links_are_refused(lossless_engine: Engine) -> None:
    # The promote back adds UNIQUE (sprint_id, goal_id): the kept links could not come
    # back, so the collapse that promises they will is refused before any change.
    setup(lossless_engine, JUNCTION, REPEATED_PAIR)

    assert_refused(
        lossless_engine,
        collapse(keep_extra_links=True),
        r"^refused: sprint_goals: 2 row\(s\) repeat a \(sprint_id, goal_id\) pair, .*"
        r" \(e\.g\. \(\w{8}-.*\); remove the repeated links first, or collapse without"
        r" keep_extra_links",
    )


def test_repeated_pairs_are_refused_offline(lossless_engine: Engine) -> None:
    setup(lossless_engine, JUNCTION, REPEATED_PAIR)

    assert_refused_offline(
        lossless_engine,
        collapse(keep_extra_links=True, type_="uuid", owner_key="id"),
        r"refused: sprint_goals: 2 row\(s\) repeat a \(sprint_id, goal_id\) pair",
    )


def test_repeated_pairs_without_keep_extra_links_are_the_declared_loss(
    lossless_engine: Engine,
) -> None:
    setup(lossless_engine, JUNCTION, REPEATED_PAIR)

    [result] = run(lossless_engine, collapse())

    # 13 links for 6 sprints: 7 beyond the first, the repeated one among them.
    assert (result.counts["collapsed"], result.counts["lost"]) == (6, 7)


def test_first_link_does_not_depend_on_the_time_zone(lossless_engine: Engine) -> None:
    setup(lossless_engine)
    run(lossless_engine, PROMOTE)
    link = text(
        "INSERT INTO sprint_goals (sprint_id, goal_id)"
        " VALUES (md5('sprint1')::uuid, md5(:goal)::uuid)"
    )
    with lossless_engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM sprint_goals WHERE sprint_id = md5('sprint1')::uuid")
        conn.exec_driver_sql("SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14
        conn.execute(link, {"goal": "goal1"})
    with lossless_engine.begin() as conn:
        conn.exec_driver_sql("SET TimeZone = 'Pacific/Pago_Pago'")  # UTC-11, added later
        conn.execute(link, {"goal": "goal3"})
    run(lossless_engine, PROMOTE.reverse())

    with lossless_engine.connect() as conn:
        kept = conn.exec_driver_sql(
            "SELECT goal_id = md5('goal1')::uuid FROM sprints WHERE id = md5('sprint1')::uuid"
        ).scalar_one()
    assert kept is True


#: A hand-made junction with a bit of everything a real one has: its own key kind, a
#: timestamp without time zone, options, a deferrable unique pair, a CHECK, a partial
#: index, statistics, comments, grants, row-level security with a policy, triggers in
#: three modes, an owner-less sequence position.
EVERYTHING = """
ALTER TABLE sprints DROP COLUMN goal_id;
CREATE TABLE sprint_goals (
    id {id},
    sprint_id uuid NOT NULL REFERENCES sprints (id) ON DELETE CASCADE,
    goal_id uuid NOT NULL,
    created_at timestamp(3) NOT NULL DEFAULT localtimestamp,
    CONSTRAINT sprint_goals_goal FOREIGN KEY (goal_id) REFERENCES goals (id)
        ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT sprint_goals_pair UNIQUE (sprint_id, goal_id) DEFERRABLE,
    CONSTRAINT sprint_goals_recent CHECK (created_at > '2000-01-01') NOT VALID
) WITH (fillfactor = 80);
CREATE INDEX ix_sprint_goals_goal ON sprint_goals (goal_id) WHERE created_at > '2020-01-01';
CREATE INDEX ix_sprint_goals_when ON sprint_goals (created_at DESC) WITH (fillfactor = 70);
ALTER TABLE sprint_goals CLUSTER ON ix_sprint_goals_when;
ALTER TABLE sprint_goals ALTER COLUMN goal_id SET STATISTICS 500;
CREATE STATISTICS sprint_goals_stats (ndistinct) ON sprint_id, goal_id FROM sprint_goals;
COMMENT ON TABLE sprint_goals IS 'which goals a sprint serves';
COMMENT ON COLUMN sprint_goals.created_at IS 'when linked';
COMMENT ON CONSTRAINT sprint_goals_pair ON sprint_goals IS 'one link per pair';
GRANT SELECT ON sprint_goals TO PUBLIC;
GRANT UPDATE (created_at) ON sprint_goals TO PUBLIC;
ALTER TABLE sprint_goals ENABLE ROW LEVEL SECURITY;
CREATE POLICY recent ON sprint_goals FOR SELECT TO PUBLIC USING (created_at > '2001-01-01');
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
    'BEGIN NEW.created_at := localtimestamp; RETURN NEW; END';
CREATE TRIGGER a_touch BEFORE UPDATE ON sprint_goals FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER b_replica BEFORE UPDATE ON sprint_goals FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER c_off BEFORE INSERT ON sprint_goals FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE sprint_goals ENABLE REPLICA TRIGGER b_replica, DISABLE TRIGGER c_off;
INSERT INTO sprint_goals (sprint_id, goal_id, created_at)
SELECT md5('sprint' || s)::uuid, md5('goal' || g)::uuid,
       '2024-01-01 00:00'::timestamp + (s * 10 + g) * interval '1 minute'
FROM generate_series(1, 6) s, generate_series(1, 3) g WHERE g <= mod(s, 3) + 1
ORDER BY s, g;
"""

IDS = {
    "uuid": "uuid PRIMARY KEY DEFAULT gen_random_uuid()",
    "bigserial": "bigserial PRIMARY KEY",
    "identity": "bigint GENERATED ALWAYS AS IDENTITY (START WITH 100) PRIMARY KEY",
}


@pytest.mark.parametrize("id_kind", sorted(IDS))
@pytest.mark.parametrize("offline", [False, True])
def test_everything_a_hand_made_junction_holds_comes_back(
    lossless_engine: Engine, id_kind: str, offline: bool
) -> None:
    setup(lossless_engine, EVERYTHING.format(id=IDS[id_kind]))
    down = collapse(keep_extra_links=True, type_="uuid", owner_key="id")
    before = take(lossless_engine)

    if offline:  # the collapse's script records the junction too (psql semantics)
        run_offline(lossless_engine, lambda op: op.invoke(down))
    else:
        run(lossless_engine, down)
    [up] = run(lossless_engine, PROMOTE)

    assert exact(before, take(lossless_engine)) == []
    assert (up.counts["restored"], up.counts["moved"]) == (12, 0)


def test_new_links_after_a_recorded_collapse_continue_the_sequence(
    lossless_engine: Engine,
) -> None:
    setup(lossless_engine, EVERYTHING.format(id=IDS["identity"]))
    run(lossless_engine, collapse(keep_extra_links=True))
    setup_more(
        lossless_engine,
        "UPDATE sprints SET goal_id = md5('goal3')::uuid WHERE id = md5('sprint1')::uuid",
    )
    [up] = run(lossless_engine, PROMOTE)

    with lossless_engine.connect() as conn:
        ids = conn.exec_driver_sql(
            "SELECT id FROM sprint_goals WHERE sprint_id = md5('sprint1')::uuid"
        ).scalars()
        assert list(ids) == [112]  # the 12 recorded links had 100..111
    assert up.counts["dropped"] == 2 and up.counts["moved"] == 1


def test_a_promote_junction_comes_back_exactly_with_keep_extra_links(
    lossless_engine: Engine,
) -> None:
    # The toolkit's own junction, with links added since the promote: collapsing with
    # keep_extra_links records it, so the promote back gives every id and created_at back.
    made_by_promote(
        lossless_engine,
        "INSERT INTO sprint_goals (sprint_id, goal_id, created_at)"
        " VALUES (md5('sprint1')::uuid, md5('goal3')::uuid, '2030-01-01')",
    )

    assert_exact(lossless_engine, collapse(keep_extra_links=True), PROMOTE)


def test_a_promote_inverse_says_the_link_ids_go(lossless_engine: Engine) -> None:
    made_by_promote(lossless_engine)

    [down] = run(lossless_engine, collapse())

    assert "link ids and created_at not kept (this undoes the promote" in " ".join(down.notes)
    with lossless_engine.connect() as conn:  # nothing recorded: back to before the promote
        assert conn.exec_driver_sql("SELECT to_regclass('lossless_stash')").scalar() is None


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("unique_name", "uq_other", "unique_name='uq_other' contradicts the record"),
        ("ondelete", "SET NULL", "ondelete='SET NULL' contradicts .* ON DELETE CASCADE"),
        ("index", True, r"index=True contradicts .*\(indexes ix_sprint_goals_goal"),
        ("referent_table", "tasks", "referent_table='tasks' contradicts .*public.goals"),
    ],
)
def test_a_promote_contradicting_the_junction_record_is_refused(
    lossless_engine: Engine, argument: str, value: object, message: str
) -> None:
    setup(lossless_engine, JUNCTION)
    run(lossless_engine, collapse(keep_extra_links=True))
    promote = replace(PROMOTE, **{argument: value})

    assert_refused(lossless_engine, promote, "^refused: promote_fk_to_junction: " + message)


def test_a_promote_agreeing_with_the_junction_record_is_exact(lossless_engine: Engine) -> None:
    setup(lossless_engine, JUNCTION)
    agreeing = replace(
        PROMOTE, unique_name="sprint_goals_pair", ondelete="CASCADE", referent_table="goals"
    )

    assert_exact(lossless_engine, collapse(keep_extra_links=True), agreeing)


def test_an_offline_promote_of_a_recorded_junction_is_refused(lossless_engine: Engine) -> None:
    setup(lossless_engine, JUNCTION)
    run(lossless_engine, collapse(keep_extra_links=True))
    offline = replace(PROMOTE, owner_key="id", referent_table="goals", referent_key="id")

    assert_refused_offline(
        lossless_engine, offline, "the junction of sprints.goal_id was recorded by a collapse"
    )


def test_a_junction_with_a_generated_column_is_not_recorded(lossless_engine: Engine) -> None:
    setup(
        lossless_engine,
        JUNCTION,
        "ALTER TABLE sprint_goals ADD COLUMN day date"
        " GENERATED ALWAYS AS ((created_at AT TIME ZONE 'UTC')::date) STORED",
    )

    assert_refused(
        lossless_engine,
        collapse(keep_extra_links=True),
        r"^refused: collapse_junction_to_fk: sprint_goals has generated column\(s\) day,",
    )
