"""env.py that keeps the version table as public.schema_versions."""

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = config.attributes.get("connection", None) or engine_from_config(
    config.get_section(config.config_ini_section, {}),
    prefix="sqlalchemy.",
    poolclass=pool.NullPool,
)
with connectable.connect() as connection:
    context.configure(connection=connection, version_table="schema_versions")
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
