"""Alembic environment: run the migrations on the connection the caller hands over.

The service migrates at startup through :func:`api.storage.session.migrate`, which passes its
connection in ``config.attributes["connection"]``; without one (the ``alembic`` command line),
the URL comes from the service settings.
"""

from __future__ import annotations

import geoalchemy2.alembic_helpers
from alembic import context
from sqlalchemy import Connection

from api.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=geoalchemy2.alembic_helpers.render_item,
        include_object=geoalchemy2.alembic_helpers.include_object,
        process_revision_directives=geoalchemy2.alembic_helpers.writer,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade --sql``)."""
    from api.settings import get_settings

    context.configure(
        url=get_settings().resolved_database_url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or open one from the settings."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from api.settings import get_settings
    from api.storage.session import get_engine, lock_for_migration

    with get_engine(get_settings().resolved_database_url).begin() as conn:
        lock_for_migration(conn)
        _run(conn)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
