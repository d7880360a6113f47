"""Engines for each backend, and every dialect difference that is about connections.

SQLite is configured so that ``database is locked`` does not reach users under normal
contention: ``busy_timeout`` is set first on every connection, pysqlite's own implicit BEGIN is
switched off, and every transaction on our engines begins with ``BEGIN IMMEDIATE`` (a deferred
transaction that later writes fails at once with SQLITE_BUSY whatever the busy timeout) unless it
is marked read-only with :data:`READ_ONLY`. MySQL/MariaDB runs at READ COMMITTED (gap locks under
REPEATABLE READ block concurrent enqueues) and must support ``SKIP LOCKED``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    NoSuchModuleError,
)

from jobqueue.errors import ConfigurationError

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

#: Execution option: begin this SQLite transaction deferred (plain ``BEGIN``), for reads only.
READ_ONLY = {"jobqueue_read_only": True}

#: Execution option for one statement that is its own transaction: see
#: :func:`autocommit_options`.
_AUTOCOMMIT_SQLITE = {"jobqueue_autocommit": True}

DEFAULT_BUSY_TIMEOUT_MS = 10_000
_DRIVERS = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_MIN_MYSQL = (8, 0, 1)
_MIN_MARIADB = (10, 6)


def mask_url(url: str | URL) -> str:
    """The URL as text with any password replaced by ``***``, safe for logs and errors: the
    password part, and query parameters that carry one (``?password=``, ``sslpassword``, …)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        parsed = None
    if parsed is not None:
        secret = [key for key in parsed.query if _SECRET_QUERY_KEY.search(key)]
        if secret:
            parsed = parsed.update_query_dict({key: "***" for key in secret})
        return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    # Unparsable: show it as written, but with everything between the user name's ":" and the
    # last "@" masked (a password may itself contain ":", "/" or "@").
    text = str(url)
    at = text.rfind("@")
    scheme_end = text.find("://")
    start = scheme_end + 3 if 0 <= scheme_end < at else 0
    colon = text.find(":", start, at)
    if at < 0 or colon < 0:
        return text
    return f"{text[: colon + 1]}***{text[at:]}"


_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and choose our driver when none is named (``postgresql://`` → psycopg 3)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            f"{mask_url(url)!r} is not a database URL; expected e.g. sqlite:///jobqueue.db, "
            "postgresql://user@host/db or mysql://user@host/db"
        ) from None
    if parsed.drivername.split("+")[0] == "postgres":
        # What hosting services hand out (Heroku, Render, Fly); SQLAlchemy knows only the name
        # "postgresql".
        parsed = parsed.set(drivername=parsed.drivername.replace("postgres", "postgresql", 1))
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
    prepared_statements: bool = False,
) -> Engine:
    """Create an engine for jobqueue's own use; nothing connects until it is first used.

    ``prepared_statements`` (PostgreSQL): let psycopg prepare a query from its fifth use on a
    connection. Off by default, for PgBouncer (see :func:`_engine_options`); on a direct
    connection it makes a single enqueue's INSERT about a third faster on the server.
    """
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    options = _engine_options(parsed, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
    if prepared_statements and backend == "postgresql":
        options["connect_args"]["prepare_threshold"] = 5
    options["echo"] = echo
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
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
    if backend in ("mysql", "mariadb"):
        # Checked at the first connection (after the dialect has read the server version), so
        # every use, `jobrunner migrate` included, refuses a server without SKIP LOCKED.
        version_checked: list[bool] = []

        @event.listens_for(engine, "connect")
        def _on_first_connect(_dbapi_connection: Any, _record: Any) -> None:
            if not version_checked:
                check_server_version(engine)
                version_checked.append(True)

    return engine


def _engine_options(parsed: URL, *, busy_timeout_ms: int, pool_size: int | None) -> dict[str, Any]:
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
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
    if backend == "postgresql":
        # libpq waits for ever on a blackholed server by default; keepalives notice a dead peer.
        # No server-side prepared statements (psycopg prepares a query from its fifth use):
        # behind a transaction pooler such as PgBouncer the next transaction may run on another
        # server connection, which never saw the statement ("prepared statement "_pg3_0" does
        # not exist"), or one where another client prepared a statement of the same name.
        # Measured on processing and latency, preparing saved nothing visible; a single
        # enqueue gains a third (create_engine's prepared_statements turns it on).
        options["connect_args"] = {
            "prepare_threshold": None,
            "connect_timeout": 10,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    if backend in ("mysql", "mariadb"):
        options["isolation_level"] = "READ COMMITTED"
    return options


def configure_sqlite(
    engine: Engine,
    *,
    synchronous: SqliteSynchronous = "NORMAL",
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> None:
    """Make a SQLite engine safe for concurrent writers; call it on your own engine too.

    Use it on the engine behind the connections or sessions you pass for transactional
    enqueue, so that your transactions also begin with ``BEGIN IMMEDIATE`` and wait for the
    write lock instead of failing with ``database is locked``. Calling it again on the same engine
    (or on one :func:`create_engine` made) adds nothing; the settings given last apply to
    connections opened afterwards.
    """
    if engine.dialect.name != "sqlite":
        raise ConfigurationError(f"configure_sqlite() needs a SQLite engine, not {engine.url}")
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ConfigurationError(
            f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
        )
    settings: dict[str, Any] = {"busy_timeout_ms": int(busy_timeout_ms), "synchronous": synchronous}
    configured: dict[str, Any] | None = getattr(engine, _SQLITE_SETTINGS, None)
    if configured is not None or event.contains(engine, "begin", _begin_sqlite_transaction):
        # Configured already (twice would issue a second BEGIN inside the first): the listeners
        # stay as they are; new connections get the settings given last.
        if configured is not None:
            configured.update(settings)
        return
    setattr(engine, _SQLITE_SETTINGS, settings)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # busy_timeout first, so even the following pragmas wait for a lock instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(settings['busy_timeout_ms'])}")
        cursor.execute(f"PRAGMA synchronous = {settings['synchronous']}")
        cursor.close()
        # Switch off pysqlite's implicit BEGIN so the "begin" event below decides how we begin.
        dbapi_connection.isolation_level = None

    event.listen(engine, "begin", _begin_sqlite_transaction)


#: Attribute of an engine configure_sqlite() has set up: its settings, read by new connections.
_SQLITE_SETTINGS = "_jobqueue_sqlite_settings"


def _begin_sqlite_transaction(connection: Connection) -> None:
    """``BEGIN IMMEDIATE`` (take the write lock, waiting up to busy_timeout), a deferred
    ``BEGIN`` for transactions marked :data:`READ_ONLY`, or nothing for a statement that
    commits itself (:func:`autocommit_options`)."""
    options = connection.get_execution_options()
    if options.get("jobqueue_autocommit"):
        return
    if options.get("jobqueue_read_only"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def autocommit_options(dialect: str) -> dict[str, Any] | None:
    """Execution options that make each statement commit itself, or None where that costs
    more than it saves (decided from the dialect alone, before any connection is taken).

    One statement sent alone is one round trip; in a transaction it is three or four (BEGIN,
    the statement, COMMIT). SQLite's connections already run in the driver's autocommit mode
    (:func:`configure_sqlite`), so only our ``BEGIN IMMEDIATE`` is left out (SQLAlchemy's own
    AUTOCOMMIT would, on the way back to the pool, switch pysqlite's implicit BEGIN back on).
    psycopg switches modes locally. PyMySQL would send ``SET AUTOCOMMIT`` both ways, two round
    trips to save one, so MySQL keeps its transaction.
    """
    if dialect == "sqlite":
        return _AUTOCOMMIT_SQLITE
    if dialect == "postgresql":
        return {"isolation_level": "AUTOCOMMIT"}
    return None


def missing_sqlite_file(url: URL) -> str | None:
    """The path of a SQLite database file that does not exist in a folder that does
    (connecting would create it, empty), or None. Anything but a plain file path (another
    backend, ``file:`` URIs) is None; so is a path whose folder is missing, which connecting
    reports as a database that cannot be opened."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    folder = os.path.dirname(os.path.abspath(path))
    return path if os.path.isdir(folder) and not os.path.exists(path) else None


def supports_notify(dialect: str) -> bool:
    """Whether workers can wake on LISTEN/NOTIFY (PostgreSQL); other backends poll."""
    return dialect == "postgresql"


def libpq_conninfo(url: str) -> str:
    """The URL as a plain ``postgresql://`` conninfo, for a psycopg connection of our own
    outside SQLAlchemy (the listener's)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
