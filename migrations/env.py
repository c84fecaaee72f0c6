"""Alembic environment: the URL comes from the caller (nightshift db upgrade) or NIGHTSHIFT_ settings."""

from __future__ import annotations

from alembic import context

from nightshift.platform.db import make_engine
from nightshift.platform.models import Base
from nightshift.resources import load_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        # Batch mode lets later migrations alter tables on SQLite, which has no ALTER for most changes.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
