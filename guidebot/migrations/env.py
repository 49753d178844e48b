"""Alembic environment, configured from code (guidebot.store.db.alembic_config).

The caller hands over an open connection in ``config.attributes["connection"]``, so the
database URL (with any password) never passes through ini-file interpolation and the same
code works from a source checkout and from an installed wheel.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from guidebot.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("guidebot migrations run online only: use `guidebot db upgrade`")
run_migrations_online()
