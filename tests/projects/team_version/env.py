"""env.py that keeps the version table as meta.team_version (and creates the schema)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = config.attributes.get("connection", None) or engine_from_config(
    config.get_section(config.config_ini_section, {}),
    prefix="sqlalchemy.",
    poolclass=pool.NullPool,
)
with connectable.connect() as connection:
    connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS meta")
    context.configure(
        connection=connection, version_table="team_version", version_table_schema="meta"
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
