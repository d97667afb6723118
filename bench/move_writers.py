"""An application writing to the iteration-decoupling tables while ``move_fk_to_child``
(the upgrade) or ``move_fk_to_parent`` (the downgrade) runs.

Each ``PlanWriter`` is one application connection (``bench.app_writers.AppWriter``:
loopback, bounded loop, one short transaction every ``pace_s`` seconds, the statement
that meets the other shape retried once in it). Its transactions:

- a run: a new plan, a migration on it and an iteration of that migration (before ADR
  024 the migration carries the plan; after it the iteration does, and the migration
  holds it under ``legacy_plm_id`` of its metadata until its iteration is inserted);
- a re-plan: one of the connection's own migrations moves to a new plan (its
  ``plm_id`` before, its iterations' after): the mirrors must carry the change;
- a read: the migration's iterations joined to its plan.

Connections 0 and 3 only add runs; 1 adds runs and re-plans; 2 re-plans and reads.
``missing`` checks afterwards, in whichever shape the database is, that each migration a
connection committed is on the last plan it gave it, with its iteration.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg

from bench.app_writers import AppWriter, Job, Written
from toolkit.postgres import connect

Conn = psycopg.Connection[tuple[object, ...]]

#: Statements per shape: before ADR 024 the migration carries the plan, after it the iteration.
OLD_SHAPE = (
    "INSERT INTO migrations_mig (mig_id, mig_name, plm_id) VALUES (%(mig)s, 'app', %(plm)s)",
    "INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type)"
    " VALUES (%(ite)s, %(mig)s, 'app', 'DR')",
)
#: After it, a migration without iterations holds its plan under ``legacy_plm_id``: the
#: application writes it there until the migration's first iteration carries the plan.
NEW_SHAPE = (
    "INSERT INTO migrations_mig (mig_id, mig_name, mig_metadata)"
    " VALUES (%(mig)s, 'app', jsonb_build_object('legacy_plm_id', %(plm)s::text))",
    "INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, plm_id)"
    " VALUES (%(ite)s, %(mig)s, 'app', 'DR', %(plm)s)",
    "UPDATE migrations_mig SET mig_metadata = mig_metadata - 'legacy_plm_id'"
    " WHERE mig_id = %(mig)s",
)
_NEW_PLAN = "INSERT INTO plans_master_plm (plm_id, plm_name) VALUES (%(plm)s, 'app')"
_REPLAN = (
    "UPDATE migrations_mig SET plm_id = %(plm)s WHERE mig_id = %(mig)s",
    "UPDATE iterations_ite SET plm_id = %(plm)s WHERE mig_id = %(mig)s",
)
_ON_PLAN = (
    "SELECT count(*) FROM iterations_ite AS i JOIN migrations_mig AS m USING (mig_id)"
    " JOIN plans_master_plm AS p ON p.plm_id = {holder}.plm_id"
    " WHERE i.ite_id = %s AND m.mig_id = %s AND p.plm_id = %s"
)


def on_plan_query(conn: Conn) -> str:
    """One row ``(1,)`` when iteration ``%s`` of migration ``%s`` is on plan ``%s``, in
    whichever shape the database is: ``migrations_mig.plm_id`` or ``iterations_ite.plm_id``."""
    old_shape = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'migrations_mig' AND column_name = 'plm_id'"
    ).fetchone()
    return _ON_PLAN.format(holder="m" if old_shape else "i")


def missing(url: str, written: Sequence[Written]) -> list[str]:
    """The migrations a connection committed that are not on the last plan it gave them
    (with their iteration) any more (empty: none lost)."""
    final = {w.id: dict(w.values) for w in written}
    with connect(url) as conn:
        query = on_plan_query(conn).encode()
        return [
            f"migration {mig} {values}"
            for mig, values in final.items()
            if conn.execute(query, (values["ite_id"], mig, values["plm_id"])).fetchone() != (1,)
        ]


class PlanWriter(AppWriter):
    """One application connection of the iteration-decoupling schema (module docstring)."""

    def jobs(self) -> list[list[Job]]:
        return [[self._run], [self._run, self._replan], [self._replan, self._read], [self._run]]

    def _run(self, conn: Conn) -> Written:
        ids = {"plm": str(uuid.uuid4()), "mig": str(uuid.uuid4()), "ite": str(uuid.uuid4())}
        self._sql(conn, _NEW_PLAN, ids)
        for statement in NEW_SHAPE if self.new_shape else OLD_SHAPE:
            self._sql(conn, statement, ids)
        values = (("plm_id", ids["plm"]), ("ite_id", ids["ite"]))
        return Written("migrations_mig", ids["mig"], values)

    def _mine(self) -> Written | None:
        mine = [w for w in self.stats.written if w.table == "migrations_mig"]
        return mine[(self._turn * 7919) % len(mine)] if mine else None

    def _replan(self, conn: Conn) -> Written:
        run = self._mine()
        if run is None:
            return self._run(conn)
        ids = {"plm": str(uuid.uuid4()), "mig": run.id}
        self._sql(conn, _NEW_PLAN, ids)
        self._sql(conn, _REPLAN[1] if self.new_shape else _REPLAN[0], ids)
        iteration = dict(run.values)["ite_id"]
        return Written("migrations_mig", run.id, (("plm_id", ids["plm"]), ("ite_id", iteration)))

    def _read(self, conn: Conn) -> None:
        run = self._mine()
        if run is not None:
            self._sql(
                conn,
                "SELECT count(*) FROM iterations_ite AS i JOIN migrations_mig AS m"
                " USING (mig_id) WHERE m.mig_id = %s",
                (run.id,),
            )
