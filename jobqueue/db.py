"""Engines for each backend, and every dialect difference that is about connections.

SQLite is configured so that ``database is locked`` does not reach users under normal
contention: ``busy_timeout`` is set first on every connection, pysqlite's own implicit BEGIN is
switched off, and every transaction on our engines begins with ``BEGIN IMMEDIATE`` (a deferred
transaction that later writes fails at once with SQLITE_BUSY whatever the busy timeout) unless it
is marked read-only with :data:`READ_ONLY`. MySQL/MariaDB runs at READ COMMITTED (gap locks under
REPEATABLE READ block concurrent enqueues) and must support ``SKIP LOCKED``.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from jobqueue.errors import ConfigurationError, DatabaseUnavailableError

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

#: Execution option: begin this SQLite transaction deferred (plain ``BEGIN``), for reads only.
READ_ONLY = {"jobqueue_read_only": True}

DEFAULT_BUSY_TIMEOUT_MS = 10_000
_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_MIN_MYSQL = (8, 0, 1)
_MIN_MARIADB = (10, 6)


def mask_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ``***``, safe for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and choose our driver when none is named (``postgresql://`` → psycopg 3)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"{mask_url(url)!r} is not a database URL; expected e.g. sqlite:///jobqueue.db, "
            "postgresql://user@host/db or mysql://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise ConfigurationError(
            f"unsupported database {backend!r} in {mask_url(parsed)}: jobqueue runs on "
            "sqlite, postgresql and mysql/mariadb"
        )
    if "+" not in parsed.drivername and backend in _DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{_DRIVERS[backend]}")
    return parsed


def create_engine(
    url: str | URL,
    *,
    sqlite_synchronous: SqliteSynchronous = "NORMAL",
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    pool_size: int | None = None,
    echo: bool = False,
) -> Engine:
    """Create an engine for jobqueue's own use; nothing connects until it is first used."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {"echo": echo}
    if backend == "sqlite":
        options["connect_args"] = {"timeout": busy_timeout_ms / 1000}
        if parsed.database in (None, "", ":memory:"):
            raise ConfigurationError(
                "an in-memory SQLite database cannot be shared between a producer and workers; "
                "use a file, e.g. sqlite:///jobqueue.db"
            )
    else:
        options["pool_pre_ping"] = False
        options["pool_recycle"] = 1800
        if pool_size is not None:
            options["pool_size"] = pool_size
            options["max_overflow"] = max(2, pool_size // 2)
    if backend in ("mysql", "mariadb"):
        options["isolation_level"] = "READ COMMITTED"
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    try:
        engine = sa_create_engine(parsed, **options)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as error:
        extra = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(backend, "")
        hint = f"; install it with: pip install 'jobqueue[{extra}]'" if extra else ""
        raise ConfigurationError(
            f"no database driver for {mask_url(parsed)} ({error}){hint}"
        ) from None
    except ArgumentError as error:
        raise ConfigurationError(f"cannot use {mask_url(parsed)}: {error}") from None
    if backend == "sqlite":
        configure_sqlite(engine, synchronous=sqlite_synchronous, busy_timeout_ms=busy_timeout_ms)
    return engine


def configure_sqlite(
    engine: Engine,
    *,
    synchronous: SqliteSynchronous = "NORMAL",
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> None:
    """Make a SQLite engine safe for concurrent writers; call it on your own engine too.

    Use it on the engine behind the connections or sessions you pass for transactional
    enqueue, so that your transactions also begin with ``BEGIN IMMEDIATE`` and wait for the
    write lock instead of failing with ``database is locked``.
    """
    if engine.dialect.name != "sqlite":
        raise ConfigurationError(f"configure_sqlite() needs a SQLite engine, not {engine.url}")
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ConfigurationError(
            f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # busy_timeout first, so even the following pragmas wait for a lock instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()
        # Switch off pysqlite's implicit BEGIN so the "begin" event below decides how we begin.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("jobqueue_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def check_server_version(engine: Engine) -> None:
    """Refuse MySQL < 8.0.1 and MariaDB < 10.6, which lack ``SKIP LOCKED``."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return
    version = engine.dialect.server_version_info or ()
    is_mariadb = bool(getattr(engine.dialect, "is_mariadb", False))
    minimum = _MIN_MARIADB if is_mariadb else _MIN_MYSQL
    if tuple(version[: len(minimum)]) < minimum:
        product = "MariaDB" if is_mariadb else "MySQL"
        raise ConfigurationError(
            f"{product} {'.'.join(map(str, version))} at {mask_url(engine.url)} is too old: "
            f"jobqueue needs {product} >= {'.'.join(map(str, minimum))} for SKIP LOCKED"
        )


def unavailable(engine: Engine, error: DBAPIError) -> DatabaseUnavailableError:
    """A :class:`DatabaseUnavailableError` naming the masked URL and the driver's reason."""
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    return DatabaseUnavailableError(
        f"cannot reach the database at {mask_url(engine.url)}: {reason}"
    )


def operational_error(engine: Engine, error: DBAPIError) -> Exception:
    """The error to raise for ``error``: a clear jobqueue error where the database could not be
    used (lost connection, SQLite lock held past the busy timeout), else ``error`` itself."""
    reason = str(error.orig).strip() if error.orig else str(error)
    if engine.dialect.name == "sqlite" and ("locked" in reason or "busy" in reason):
        return DatabaseUnavailableError(
            f"{mask_url(engine.url)} stayed locked by another writer for longer than the busy "
            f"timeout ({reason}); nothing was written"
        )
    if is_disconnect(error) or isinstance(error, OperationalError):
        return unavailable(engine, error)
    return error


def is_disconnect(error: BaseException) -> bool:
    """True for errors that mean the connection was lost (the pool has dropped it)."""
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)
