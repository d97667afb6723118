"""env.py whose engine gets its connections from psycopg directly (a 'creator'), to the
application's database (APP_DATABASE_DSN): SQLAlchemy never sees the URL."""

import os

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

engine = create_engine(
    "postgresql+psycopg://",
    creator=lambda: psycopg.connect(os.environ["APP_DATABASE_DSN"]),
    poolclass=pool.NullPool,
)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
