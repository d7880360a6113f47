"""The connection handle: one database, its engine (made on first use), connections and
transactions, and the check that its schema is the one this code expects.

Everything that touches the database takes a :class:`Database`; :class:`jobqueue.JobQueue`
is one too, with the producer's operations on top. Nothing connects at import time.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, column, select, table
from sqlalchemy.exc import DBAPIError, ProgrammingError

from jobqueue.config import resolve_database_url
from jobqueue.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    READ_ONLY,
    SqliteSynchronous,
    check_server_version,
    create_engine,
    mask_url,
    missing_sqlite_file,
)
from jobqueue.db_errors import unavailable
from jobqueue.driver import as_sqlalchemy_error, self_committing_cursor
from jobqueue.errors import SchemaError
from jobqueue.schema import SCHEMA_REVISION, VERSION_TABLE

# Engines whose schema revision was checked: the check runs once per engine, not per enqueue.
_verified_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_verify_lock = threading.Lock()


class Database:
    """A jobqueue database: its URL, a lazily created engine, and connections from it."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        sqlite_synchronous: SqliteSynchronous = "NORMAL",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_size: int | None = None,
        prepared_statements: bool = False,
    ) -> None:
        """``database_url`` defaults to the resolved configuration (see :mod:`jobqueue.config`);
        ``engine`` lets you hand over one you built (for SQLite, call
        :func:`jobqueue.configure_sqlite` on it). ``prepared_statements``: see
        :func:`jobqueue.db.create_engine` (PostgreSQL without PgBouncer only)."""
        if engine is not None and database_url is not None:
            raise ValueError("pass database_url= or engine=, not both")
        self.database_url = (
            engine.url.render_as_string(hide_password=False)
            if engine is not None
            else resolve_database_url(database_url)
        )
        self._engine = engine
        self._engine_options: dict[str, Any] = {
            "sqlite_synchronous": sqlite_synchronous,
            "busy_timeout_ms": busy_timeout_ms,
            "pool_size": pool_size,
            "prepared_statements": prepared_statements,
        }
        self._engine_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({mask_url(self.database_url)!r})"

    @property
    def engine(self) -> Engine:
        """The engine, created on first use."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = create_engine(self.database_url, **self._engine_options)
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection; the database can still be used afterwards."""
        if self._engine is not None:
            self._engine.dispose()

    def forget_connections(self) -> None:
        """Drop pooled connections without closing them: in a forked child they belong to the
        parent, and closing them would end the parent's sessions too."""
        if self._engine is not None:
            self._engine.dispose(close=False)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[Connection]:
        """A connection from the pool; a failure to connect becomes DatabaseUnavailableError."""
        engine = self.engine
        try:
            connection = engine.connect()
        except DBAPIError as error:
            raise unavailable(engine, error) from error
        try:
            if read_only:
                connection = connection.execution_options(**READ_ONLY)
            yield connection
        finally:
            connection.close()

    @contextmanager
    def driver_cursor(self) -> Iterator[tuple[Any, Dialect]]:
        """A driver cursor whose statements commit themselves, and its dialect (see
        :func:`jobqueue.driver.self_committing_cursor`: SQLite and PostgreSQL only); a failure
        to connect becomes DatabaseUnavailableError, as in :meth:`connect`."""
        engine = self.engine
        try:
            pooled = engine.raw_connection()  # the pool raises the driver's own errors
        except engine.dialect.loaded_dbapi.Error as error:
            wrapped = as_sqlalchemy_error(engine.dialect, error, None, None)
            raise unavailable(engine, wrapped) from error
        try:
            with self_committing_cursor(pooled, engine.dialect) as cursor:
                yield cursor, engine.dialect
        finally:
            pooled.close()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Connection]:
        """A connection inside a transaction that commits when the block ends without error."""
        with self.connect(read_only=read_only) as connection, connection.begin():
            yield connection

    def verify_schema(self, connection: Connection | None = None) -> None:
        """Raise :class:`SchemaError` unless the tables exist at the revision this code expects.

        Checked once per engine, so the cost is not paid on every enqueue. With a caller's
        ``connection`` the check runs there inside a SAVEPOINT (a missing table must not abort
        the caller's PostgreSQL transaction, and a second pooled connection must not be needed).
        """
        engine = connection.engine if connection is not None else self.engine
        if engine in _verified_engines:
            return
        missing = missing_sqlite_file(engine.url)
        if missing is not None:
            # Checked before connecting: SQLite would create an empty file and leave it behind.
            raise SchemaError(
                f"the SQLite database {missing} does not exist; run `jobrunner migrate "
                f"--database-url {mask_url(engine.url)}` first"
            )
        with _verify_lock:
            if engine in _verified_engines:
                return
            try:
                if connection is not None:
                    check_server_version(engine)
                    with connection.begin_nested():
                        revision = read_schema_revision(connection)
                else:
                    with self.transaction(read_only=True) as own:
                        check_server_version(engine)
                        revision = read_schema_revision(own)
            except DBAPIError as error:
                raise unavailable(engine, error) from error
            where = mask_url(engine.url)
            if revision is None:
                raise SchemaError(
                    f"the jobqueue tables do not exist in {where}; "
                    f"run `jobrunner migrate --database-url {where}` first"
                )
            if revision != SCHEMA_REVISION:
                raise SchemaError(
                    f"the jobqueue schema in {where} is at revision {revision}, but this version "
                    f"of jobqueue needs {SCHEMA_REVISION}: run `jobrunner migrate` (or upgrade "
                    "jobqueue if the database is newer)"
                )
            _verified_engines.add(engine)


def read_schema_revision(connection: Connection) -> str | None:
    """The jobqueue alembic revision of this database, or ``None`` if it was never migrated.

    Call it on a connection of its own: on PostgreSQL a missing table aborts the transaction.
    """
    version = table(VERSION_TABLE, column("version_num"))
    try:
        rows = connection.execute(select(version.c.version_num)).scalars().all()
    except (ProgrammingError, DBAPIError) as error:
        if _is_missing_table(error):
            return None
        raise
    return rows[0] if rows else None


def _is_missing_table(error: DBAPIError) -> bool:
    text = str(error.orig).lower()
    return any(
        marker in text
        for marker in ("no such table", "does not exist", "doesn't exist", "undefinedtable")
    )
