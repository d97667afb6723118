"""The ``env.py`` body of the bundled script directories (and of any team that wants it).

A revisions folder's ``env.py`` is just::

    from toolkit.alembic_env import run_migrations
    run_migrations()

Online, it uses the connection the caller put in ``config.attributes["connection"]`` (so a
caller can run a revision inside its own transaction and roll it back), else it connects to
``sqlalchemy.url``. Every revision runs in its own transaction, so a failure leaves the
database at the last good revision. Offline (``--sql``), it renders literal SQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

import toolkit.ops  # noqa: F401  (registers op.<name> for the revisions)
from toolkit.postgres.url import sqlalchemy_url
from toolkit.revision_events import announce_configured, on_version_apply

__all__ = ["on_version_apply", "run_migrations"]


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        transaction_per_migration=True,
        on_version_apply=on_version_apply,
    )
    announce_configured()
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Run the migrations Alembic asked for, online or offline."""
    config = context.config
    if context.is_offline_mode():
        url = config.get_main_option("sqlalchemy.url") or "postgresql://"
        context.configure(
            url=str(sqlalchemy_url(url)),
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    online_url = config.get_main_option("sqlalchemy.url")
    if not online_url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = create_engine(sqlalchemy_url(online_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()
