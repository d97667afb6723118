"""A tiny Alembic project on disk, as a team would have one, for the CLI tests.

Four revisions: ``a1`` creates ``accounts``; ``b2`` copies every account's email into a new
``contacts`` table, reports it as an operation result (``moved``), refuses accounts with an
empty email before changing anything, and declares on downgrade the contacts that differ
from their account (``lost``); ``c3`` adds a column and a unique constraint (fails on
duplicate emails, needs an ACCESS EXCLUSIVE lock); ``d4`` records the migration session's
settings in a table so tests can see the timeouts the CLI set.
"""

from __future__ import annotations

from pathlib import Path

ENV_PY = "from toolkit.alembic_env import run_migrations\n\nrun_migrations()\n"

#: An env.py that ignores the connection it is given and opens its own from sqlalchemy.url.
OWN_CONNECTION_ENV_PY = """\
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
"""

#: An env.py that logs the URL it was given through a handler of its own, as a team's
#: ``fileConfig`` logging would: the password must not get through.
CHATTY_ENV_PY = """\
import logging
import sys

from alembic import context

from toolkit.alembic_env import run_migrations

log = logging.getLogger("alembic.env")
log.addHandler(logging.StreamHandler(sys.stderr))
log.warning("migrating %s", context.config.get_main_option("sqlalchemy.url"))
run_migrations()
"""

#: An env.py that prints, and configures logging from alembic.ini (see ``STDOUT_LOGGING_INI``).
PRINTING_ENV_PY = """\
from logging.config import fileConfig

from alembic import context

from toolkit.alembic_env import run_migrations

print("env.py says hello")
fileConfig(context.config.config_file_name)
run_migrations()
"""

#: Logging as ``alembic init`` writes it, except that the handler writes to stdout.
STDOUT_LOGGING_INI = """
[loggers]
keys = root,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stdout,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

_HEADER = '''\
"""{doc}"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy import text

from toolkit.errors import DataRefusedError
from toolkit.ops.results import OpResult, publish

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None

'''

REVISIONS: dict[str, tuple[str, str | None, str]] = {
    "a1": (
        "accounts",
        None,
        """
def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
    )


def downgrade():
    op.drop_table("accounts")
""",
    ),
    "b2": (
        "contacts: one per account",
        "a1",
        """
COPY = "INSERT INTO contacts (account_id, email) SELECT id, email FROM accounts ORDER BY id"


def upgrade():
    offline = op.get_context().as_sql
    if not offline:
        empty = op.get_bind().execute(
            text("SELECT id FROM accounts WHERE email = '' ORDER BY id")
        ).scalars().all()
        if empty:
            raise DataRefusedError(
                "have an empty email",
                table="accounts",
                column="email",
                count=len(empty),
                samples=empty[:3],
                hint="give them an address first",
            )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("email", sa.Text, nullable=False),
    )
    if offline:
        op.execute(COPY)
        return
    moved = op.get_bind().execute(text(COPY)).rowcount
    publish(OpResult("copy_emails", "contacts", {"moved": moved}))


def downgrade():
    if not op.get_context().as_sql:
        bind = op.get_bind()
        total = bind.execute(text("SELECT count(*) FROM contacts")).scalar_one()
        lost = bind.execute(
            text(
                "SELECT count(*) FROM contacts c JOIN accounts a ON a.id = c.account_id "
                "WHERE c.email <> a.email"
            )
        ).scalar_one()
        publish(OpResult("drop_contacts", "contacts", {"dropped": total, "lost": lost}))
    op.drop_table("contacts")
""",
    ),
    "c3": (
        "verified flag, unique email",
        "b2",
        """
def upgrade():
    op.add_column(
        "accounts",
        sa.Column("verified", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_unique_constraint("uq_accounts_email", "accounts", ["email"])


def downgrade():
    op.drop_constraint("uq_accounts_email", "accounts")
    op.drop_column("accounts", "verified")
""",
    ),
    "d4": (
        "remember the migration session's settings",
        "c3",
        """
def upgrade():
    op.execute(
        "CREATE TABLE migration_session AS SELECT "
        "current_setting('lock_timeout') AS lock_timeout, "
        "current_setting('statement_timeout') AS statement_timeout, "
        "current_setting('application_name') AS application_name"
    )


def downgrade():
    op.drop_table("migration_session")
""",
    ),
}


#: ``a1`` and a revision whose downgrade forgets to undo its data change: a round trip must
#: catch it.
LOSSY_REVISIONS: dict[str, tuple[str, str | None, str]] = {
    "a1": REVISIONS["a1"],
    "e5": (
        "shout every email",
        "a1",
        """
def upgrade():
    op.execute("UPDATE accounts SET email = upper(email)")


def downgrade():
    pass
""",
    ),
}


def write_project(
    root: Path,
    *,
    env_py: str = ENV_PY,
    revisions: dict[str, tuple[str, str | None, str]] = REVISIONS,
    ini_extra: str = "",
) -> Path:
    """Write the project under ``root``; returns its ``alembic.ini`` (``ini_extra`` appended)."""
    versions = root / "versions"
    versions.mkdir(parents=True)
    (root / "env.py").write_text(env_py)
    for rev, (doc, down, body) in revisions.items():
        (versions / f"{rev}.py").write_text(_HEADER.format(doc=doc, rev=rev, down=down) + body)
    ini = root / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s\n" + ini_extra)
    return ini


#: ``a1``, then ``s2``, a revision that takes its time: it creates a table, then sleeps in a
#: statement (``pg_sleep``) long enough for a test to interrupt it or kill its session.
SLOW_REVISIONS: dict[str, tuple[str, str | None, str]] = {
    "a1": REVISIONS["a1"],
    "s2": (
        "takes its time",
        "a1",
        """
def upgrade():
    op.execute("CREATE TABLE slow_marker (id int)")
    op.execute("SELECT pg_sleep(60)")


def downgrade():
    op.drop_table("slow_marker")
""",
    ),
}

#: ``a1``, then ``g2``, a revision whose commit takes its time: a deferred constraint trigger
#: sleeps when the transaction commits, so a test can lose the connection mid-commit.
SLOW_COMMIT_REVISIONS: dict[str, tuple[str, str | None, str]] = {
    "a1": REVISIONS["a1"],
    "g2": (
        "commits slowly",
        "a1",
        """
def upgrade():
    op.execute("CREATE TABLE commit_gate (id int)")
    op.execute(
        "CREATE FUNCTION commit_gate_wait() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER commit_gate_wait AFTER INSERT ON commit_gate "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_gate_wait()"
    )
    op.execute("INSERT INTO commit_gate VALUES (1)")


def downgrade():
    op.drop_table("commit_gate")
    op.execute("DROP FUNCTION commit_gate_wait()")
""",
    ),
}
