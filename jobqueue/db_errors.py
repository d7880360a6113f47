"""What a database error means: a lost connection, a deadlock, an outage, or a real error;
and the clear :class:`~jobqueue.errors.DatabaseUnavailableError` that names the (masked) URL.

Retry decisions everywhere (enqueue, the claim loop, start-up) ask these, so "worth retrying"
is decided in one place.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from jobqueue.db import mask_url
from jobqueue.errors import DatabaseUnavailableError


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
    if engine.dialect.name == "sqlite" and is_sqlite_full(error):
        return _disk_full(engine, reason)
    if engine.dialect.name == "sqlite" and ("locked" in reason or "busy" in reason):
        return DatabaseUnavailableError(
            f"{mask_url(engine.url)} stayed locked by another writer for longer than the busy "
            f"timeout ({reason}); nothing was written"
        )
    if is_disconnect(error):
        return unavailable(engine, error)
    if isinstance(error, OperationalError):
        return DatabaseUnavailableError(f"database error at {mask_url(engine.url)}: {reason}")
    return error


def commit_failed(engine: Engine, error: DBAPIError, what: str) -> DatabaseUnavailableError:
    """The error for a COMMIT of ``what`` that raised. A server may have committed before the
    answer was lost, so the outcome is unknown; SQLite reports a full disk only for a commit
    that did not happen (its commit record never reached the file), so nothing was written."""
    reason = str(error.orig).strip() if error.orig else str(error)
    if engine.dialect.name == "sqlite" and is_sqlite_full(error):
        return _disk_full(engine, reason)
    return DatabaseUnavailableError(
        f"the commit of {what} to {mask_url(engine.url)} failed ({reason}); "
        "whether it went through is unknown"
    )


def _disk_full(engine: Engine, reason: str) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(
        f"the disk holding {mask_url(engine.url)} is full ({reason}); nothing was written"
    )


def is_sqlite_full(error: BaseException) -> bool:
    """SQLite's SQLITE_FULL: the disk (or the database's max_page_count) has no room left."""
    if not isinstance(error, DBAPIError) or error.orig is None:
        return False
    name = getattr(error.orig, "sqlite_errorname", "")
    return name == "SQLITE_FULL" or "database or disk is full" in str(error.orig)


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: a lost connection, a deadlock, a lock wait, an outage; not a
    wrong password, a database or user that does not exist, or a host name that does not
    resolve (:func:`is_misconfiguration`), which waiting will not mend."""
    if is_misconfiguration(error):
        return False
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (OperationalError, InterfaceError, DatabaseUnavailableError))


#: What servers and drivers say when the settings, not the server's state, are wrong.
_MISCONFIGURED_TEXT = (
    "password authentication failed",  # PostgreSQL
    "no password supplied",
    "no pg_hba.conf entry",
    "does not exist",  # PostgreSQL: database "x" / role "x" does not exist
    "could not translate host name",  # libpq: the host name does not resolve
    "name or service not known",
    "nodename nor servname provided",
)
#: MySQL/MariaDB: access denied to a database / for a user, unknown database, unknown host.
_MISCONFIGURED_MYSQL = (1044, 1045, 1049, 2005)


def is_misconfiguration(error: BaseException) -> bool:
    """Whether ``error`` (or the driver error behind it) says the connection settings are
    wrong, so that a process starting up fails at once with one line instead of waiting for
    ever as it does for a database that is still starting."""
    seen: BaseException | None = error
    for _ in range(5):  # the driver error may sit behind our own wrapper
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and seen.orig is not None:
            args = getattr(seen.orig, "args", ())
            if args and isinstance(args[0], int) and args[0] in _MISCONFIGURED_MYSQL:
                return True
            text = str(seen.orig).lower()
            return any(marker in text for marker in _MISCONFIGURED_TEXT)
        seen = seen.__cause__
    return False


#: PostgreSQL's "the server ended this session" errors (admin_shutdown, crash_shutdown): sent
#: by a backend told to quit (``pg_ctl stop/restart -m immediate``, another backend crashing),
#: possibly after its COMMIT reached the disk and before the answer was sent, so the request's
#: fate is as unknown as on a cut connection, which the driver may not have noticed yet.
_SESSION_ENDED = ("57P01", "57P02")


def is_disconnect(error: BaseException) -> bool:
    """True for errors that mean the connection was lost: the pool has dropped it, or the
    server said it is ending the session (:data:`_SESSION_ENDED`)."""
    if not isinstance(error, DBAPIError):
        return False
    return bool(error.connection_invalidated) or (
        getattr(error.orig, "sqlstate", None) in _SESSION_ENDED
    )


def is_deadlock(error: BaseException) -> bool:
    """A deadlock victim (PostgreSQL 40P01, MySQL 1213), or a lock wait that timed out (1205)."""
    if not isinstance(error, DBAPIError) or error.orig is None:
        return False
    code = getattr(error.orig, "sqlstate", None) or ""
    args = getattr(error.orig, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None
    return code in ("40P01", "40001") or mysql_code in (1213, 1205)
