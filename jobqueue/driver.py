"""Statements sent on the driver's own connection, outside SQLAlchemy's ``Connection``, where
its per-statement machinery costs as much as the database's work: the single enqueue's one
self-committing INSERT, and PostgreSQL's COPY of a batch. Whatever goes this way still looks
like SQLAlchemy to its callers: a driver error comes out as SQLAlchemy's, and a connection
that was lost is invalidated so the pool does not hand it out again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Dialect, PoolProxiedConnection
from sqlalchemy.exc import DBAPIError


def has_statement_hooks(dialect_owner: Any) -> bool:
    """Whether anyone listens to the statements of this engine or connection (tracing
    instrumentation, a test's fault injection): those see only what goes through
    SQLAlchemy's ``Connection``, so a write they should see must not go around it."""
    dispatch = dialect_owner.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


@contextmanager
def self_committing_cursor(pooled: PoolProxiedConnection, dialect: Dialect) -> Iterator[Any]:
    """A driver cursor on a pooled connection whose statements each commit themselves (SQLite,
    PostgreSQL).

    SQLAlchemy's ``Connection`` around one statement (execution options, the isolation
    switch, a transaction and a result object) cost as much CPU as psycopg's own work for a
    single enqueue. psycopg switches to autocommit locally and back before the connection
    returns to the pool; our SQLite connections are in the driver's autocommit mode already
    (one that is not, from an engine :func:`~jobqueue.db.configure_sqlite` never saw, is
    committed here). On a driver error the connection is discarded, its state unknown.
    """
    driver: Any = pooled.driver_connection
    postgresql = dialect.name == "postgresql"
    cursor = None
    try:
        if postgresql:
            driver.autocommit = True
        cursor = pooled.cursor()
        yield cursor
        cursor.close()
        if postgresql:
            driver.autocommit = False
        elif driver.in_transaction:
            driver.commit()
    except dialect.loaded_dbapi.Error as error:
        pooled.invalidate(error)
        raise as_sqlalchemy_error(dialect, error, driver, cursor) from error


def as_sqlalchemy_error(
    dialect: Dialect, error: Any, driver: Any, cursor: Any, statement: str | None = None
) -> DBAPIError:
    """A driver error as SQLAlchemy's wrapper of it (what ``Connection.execute`` raises), with
    ``connection_invalidated`` set when the dialect reads it as a lost connection."""
    lost = bool(dialect.is_disconnect(error, driver, cursor))
    wrapped = DBAPIError.instance(
        statement,
        None,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped
