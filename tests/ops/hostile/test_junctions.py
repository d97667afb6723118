"""Collapsing junctions that real schemas have: payload columns, duplicate pairs, links
added from sessions in other time zones, a junction that was not made by promote."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from tests.ops.hostile.harness import (
    assert_exact,
    assert_refused,
    assert_refused_offline,
    run,
    setup,
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


@pytest.mark.parametrize("keep_extra_links", [False, True])
def test_payload_columns_are_refused_unless_declared(
    lossless_engine: Engine, keep_extra_links: bool
) -> None:
    setup(lossless_engine, JUNCTION, PAYLOAD)

    assert_refused(
        lossless_engine,
        collapse(keep_extra_links=keep_extra_links, drop_payload=("note",)),
        r"^refused: collapse_junction_to_fk: sprint_goals has payload column\(s\) weight that"
        r" the collapse would drop with it; .* drop_payload=",
    )
    assert_refused(
        lossless_engine, collapse(keep_extra_links=keep_extra_links), "column\\(s\\) weight, note "
    )


def test_payload_columns_are_refused_offline(lossless_engine: Engine) -> None:
    setup(lossless_engine, JUNCTION, PAYLOAD)

    assert_refused_offline(
        lossless_engine,
        collapse(type_="uuid", owner_key="id"),
        "sprint_goals has payload column\\(s\\) weight, note that the collapse would drop",
    )


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


PROMOTE = PromoteFkToJunctionOp(
    "sprints",
    "goal_id",
    junction="sprint_goals",
    owner_column="sprint_id",
    referent_column="goal_id",
)


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
