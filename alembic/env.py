"""Alembic environment for jobqueue's own tables.

Used both by developers (``alembic`` with the top-level alembic.ini) and by ``jobrunner
migrate`` (which passes its engine in ``config.attributes``). Only jobqueue's tables are
considered, and the version table is ``jobqueue_alembic_version``, so an application's own
migrations in the same database are left alone.
"""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import Engine

from alembic import context
from jobqueue.config import resolve_database_url
from jobqueue.db import create_engine
from jobqueue.schema import VERSION_TABLE, metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("engine") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Compare and migrate only jobqueue's tables, never the application's."""
    return type_ != "table" or name in metadata.tables


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    return create_engine(config.get_main_option("sqlalchemy.url") or resolve_database_url())


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or resolve_database_url(),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    if engine.dialect.name == "sqlite":
        # journal_mode is persistent in the file and cannot change inside a transaction, so it
        # is set on a raw DBAPI connection, outside the BEGIN IMMEDIATE our engines add. Both
        # `jobrunner migrate` and `alembic upgrade head` come through here.
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA journal_mode=WAL")
        finally:
            raw.close()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=VERSION_TABLE,
            include_name=include_name,
            render_as_batch=engine.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
