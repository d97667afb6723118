"""env.py that takes the URL from the application's settings object, not from Alembic."""

from alembic import context
from app_settings import settings
from sqlalchemy import create_engine, pool

engine = create_engine(settings.database_url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
