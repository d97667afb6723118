"""env.py that reads the application's own URL (APP_DATABASE_URL) and overrides sqlalchemy.url:
whatever database it is given, it migrates the application's."""

import os

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
config.set_main_option("sqlalchemy.url", os.environ["APP_DATABASE_URL"])

connectable = engine_from_config(
    config.get_section(config.config_ini_section, {}),
    prefix="sqlalchemy.",
    poolclass=pool.NullPool,
)
with connectable.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
