"""env.py that sets the versions folders at run time instead of in alembic.ini."""

from pathlib import Path

from alembic import context
from sqlalchemy import engine_from_config, pool

FAITHFUL = Path(__file__).resolve().parent.parent / "faithful" / "migrations" / "versions"
context.script.version_locations = [str(FAITHFUL), str(FAITHFUL / "refactors")]

config = context.config
if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
