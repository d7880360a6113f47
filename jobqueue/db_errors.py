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


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: a lost connection, a deadlock, a lock wait, an outage."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (OperationalError, InterfaceError, DatabaseUnavailableError))


def is_disconnect(error: BaseException) -> bool:
    """True for errors that mean the connection was lost (the pool has dropped it)."""
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def is_deadlock(error: BaseException) -> bool:
    """A deadlock victim (PostgreSQL 40P01, MySQL 1213), or a lock wait that timed out (1205)."""
    if not isinstance(error, DBAPIError) or error.orig is None:
        return False
    code = getattr(error.orig, "sqlstate", None) or ""
    args = getattr(error.orig, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None
    return code in ("40P01", "40001") or mysql_code in (1213, 1205)
