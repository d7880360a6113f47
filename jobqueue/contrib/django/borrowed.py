"""Enqueue in the caller's ``transaction.atomic()``: the job's row is written through Django's
own database connection, so it commits or rolls back with the block.

Django holds the DB-API connection and its transaction; SQLAlchemy (which writes jobqueue's
rows) is lent it through a one-connection engine whose dialect commits, rolls back and closes
nothing: the transaction stays Django's, ended by the block. This applies when
jobqueue's database *is* that connection's database (same backend, server and name, or the
same SQLite file); a job for another database is written at once in a transaction of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from sqlalchemy import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.pool import StaticPool

_LOOPBACK = {"", "localhost", "127.0.0.1", "::1"}
_PORTS = {"postgresql": 5432, "mysql": 3306}
_engines: dict[int, tuple[Any, Engine]] = {}
_lock = threading.Lock()


def url_of(connection: BaseDatabaseWrapper) -> str:
    """A SQLAlchemy URL for the database of a Django connection (its current settings, so
    the test runner's renamed database too)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{os.path.abspath(str(settings['NAME']))}"
    drivers = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
    if connection.vendor not in drivers:
        raise ValueError(f"jobqueue does not run on Django's {connection.vendor!r} backend")
    return URL.create(
        drivers[connection.vendor],
        username=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or "127.0.0.1",
        port=int(settings["PORT"]) if settings.get("PORT") else None,
        database=str(settings["NAME"]),
    ).render_as_string(hide_password=False)


@contextmanager
def atomic_connection(url: str) -> Iterator[Connection | None]:
    """A SQLAlchemy connection inside the open ``atomic()`` block of the Django connection to
    the database at ``url``, or None when no such block is open (write in our own)."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block and _same_database(connection, url):
            with _lent_engine(connection).connect() as lent:
                yield lent
            return
    yield None


def _same_database(connection: BaseDatabaseWrapper, url: str) -> bool:
    try:
        mine = make_url(url_of(connection))
    except ValueError:  # a backend jobqueue does not run on
        return False
    target = make_url(url)
    family = mine.get_backend_name()
    if family != _family(target.get_backend_name()):
        return False
    if family == "sqlite":
        return os.path.realpath(str(mine.database)) == os.path.realpath(str(target.database or ""))
    return (
        mine.database == target.database
        and _host(mine.host) == _host(target.host)
        and (mine.port or _PORTS[family]) == (target.port or _PORTS[family])
    )


def _family(backend: str) -> str:
    return "mysql" if backend == "mariadb" else backend


def _host(host: str | None) -> str:
    return "localhost" if (host or "") in _LOOPBACK else str(host)


def _lent_engine(connection: BaseDatabaseWrapper) -> Engine:
    """One engine per DB-API connection Django holds (so SQLAlchemy's per-connection set-up
    runs once on it), dropped when Django has replaced the connection."""
    raw = connection.connection
    with _lock:
        known = _engines.get(id(raw))
        if known is not None and known[0] is raw:
            return known[1]
        if len(_engines) > 64:
            _engines.clear()
        driver = _driver(connection)
        engine = create_engine(
            f"{driver}://",
            creator=lambda: raw,
            poolclass=StaticPool,
            pool_reset_on_return=None,
            module=connection.Database,
        )
        # Ending the transaction or the connection stays Django's: this engine's dialect
        # (its own instance) commits, rolls back and closes nothing.
        for method in ("do_commit", "do_rollback", "do_close", "do_terminate"):
            setattr(engine.dialect, method, _leave_to_django)
        _engines[id(raw)] = (raw, engine)
        return engine


def _leave_to_django(dbapi_connection: Any) -> None:
    """What the lent engine does where it would end Django's transaction or connection."""


def _driver(connection: BaseDatabaseWrapper) -> str:
    """The SQLAlchemy dialect for the DB-API module Django's connection uses."""
    module = connection.Database.__name__
    if connection.vendor == "sqlite":
        return "sqlite+pysqlite"
    if connection.vendor == "postgresql":
        return "postgresql+psycopg2" if module == "psycopg2" else "postgresql+psycopg"
    return "mysql+pymysql" if module == "pymysql" else "mysql+mysqldb"
