"""Small schemas with every edge case the operations must survive, built set-based.

Deterministic: ids are ``md5(...)::uuid``, timestamps fixed, so tests can name rows.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection

from tests.ops.helpers import execute


def uid(label: str) -> str:
    """The deterministic uuid (as text) the schemas give ``label``."""
    h = hashlib.md5(label.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


GOALS_AND_TARGETS = """
CREATE TABLE client_goals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
    created_at timestamp NOT NULL DEFAULT now());
CREATE TABLE targets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
    goal_id uuid NOT NULL REFERENCES client_goals(id),
    created_at timestamp NOT NULL DEFAULT now());
CREATE TABLE commitments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL,
    goal_id uuid NULL REFERENCES client_goals(id),
    metadata jsonb NULL, created_at timestamp NOT NULL DEFAULT now());
INSERT INTO client_goals (id, title, created_at)
SELECT md5('goal' || i)::uuid, 'goal ' || i, '2024-01-01'::timestamp
FROM generate_series(1, {goals}) AS i;
INSERT INTO targets (id, title, goal_id, created_at)
SELECT md5('target' || i)::uuid, 'target ' || i, md5('goal' || (i % {goals} + 1))::uuid,
       '2024-02-01'::timestamp + i * interval '1 minute'
FROM generate_series(1, {targets}) AS i;
-- metadata: NULL, {{}}, unrelated keys, nested unicode; goal_id NULL on every third row
INSERT INTO commitments (id, title, goal_id, metadata, created_at)
SELECT md5('commitment' || i)::uuid, 'commitment ' || i,
       CASE WHEN i % 3 = 0 THEN NULL ELSE md5('goal' || (i % {goals} + 1))::uuid END,
       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN '{{}}'
                  WHEN 2 THEN '{{"source": "import", "n": 2}}'
                  ELSE '{{"nested": {{"ключ": "värde ✓", "list": [1, null]}}}}' END::jsonb,
       '2024-03-01'::timestamp
FROM generate_series(1, {targets}) AS i;
"""


def goals_and_targets(conn: Connection, *, goals: int = 5, targets: int = 40) -> None:
    """``client_goals``, ``targets`` (NOT NULL FK) and ``commitments`` (nullable FK, JSONB)."""
    execute(conn, GOALS_AND_TARGETS.format(goals=goals, targets=targets))


PLANS = """
CREATE TABLE plans_master_plm (
    plm_id uuid PRIMARY KEY DEFAULT gen_random_uuid(), plm_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE migrations_mig (
    mig_id uuid PRIMARY KEY DEFAULT gen_random_uuid(), mig_name text NOT NULL,
    plm_id uuid NOT NULL REFERENCES plans_master_plm(plm_id), mig_metadata jsonb NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE iterations_ite (
    ite_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mig_id uuid NOT NULL REFERENCES migrations_mig(mig_id),
    ite_name text NOT NULL, ite_type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO plans_master_plm (plm_id, plm_name, created_at)
SELECT md5('plan' || i)::uuid, 'plan ' || i, '2024-01-01 00:00+00'
FROM generate_series(1, 4) AS i;
-- migration i: (i % 3) iterations for i <= 9 (zero, one, two), metadata NULL / {{}} / keys
INSERT INTO migrations_mig (mig_id, mig_name, plm_id, mig_metadata, created_at)
SELECT md5('mig' || i)::uuid, 'mig ' || i, md5('plan' || (i % 4 + 1))::uuid,
       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN '{{}}' WHEN 2 THEN '{{"owner": "ops"}}'
                  ELSE '{{"deep": {{"ü": [true]}}}}' END::jsonb,
       '2024-01-02 00:00+00'
FROM generate_series(1, {migrations}) AS i;
INSERT INTO iterations_ite (ite_id, mig_id, ite_name, ite_type, created_at)
SELECT md5('ite' || i || '.' || j)::uuid, md5('mig' || i)::uuid, 'ite ' || i || '.' || j,
       CASE WHEN j = 1 THEN 'DR' ELSE 'CUTOVER' END,
       '2024-01-03 00:00+00'::timestamptz
FROM generate_series(1, {migrations}) AS i, generate_series(1, 2) AS j
WHERE j <= i % 3;
"""


def plans(conn: Connection, *, migrations: int = 12) -> None:
    """ADR 024 "Model B": migrations with zero, one and two iterations (``created_at`` tie)."""
    execute(conn, PLANS.format(migrations=migrations))
