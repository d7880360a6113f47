"""Writing job rows once: a plain job as one self-committing statement, anything else in a
transaction of our own that is tried again when its connection was lost before the commit (or
it met a deadlock). Either the rows are written once, or an error says so; never dropped
silently, never doubled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from jobqueue.database import Database
from jobqueue.db import autocommit_options, mask_url
from jobqueue.db_errors import commit_failed, is_deadlock, is_disconnect, operational_error
from jobqueue.driver import has_statement_hooks
from jobqueue.errors import DatabaseUnavailableError
from jobqueue.store import jobs as store


def insert_alone(database: Database, row: dict[str, Any]) -> bool:
    """Write one plain job as one self-committing statement; False where the backend has no
    cheaper way than a transaction (see :func:`jobqueue.db.autocommit_options`).

    When the connection is lost mid-statement, whether it committed is unknown; but the job's
    id was made here, so a look tells: there, it was written; not there, it was not, and is
    sent again. Written once or an error, as in a transaction.
    """
    options = autocommit_options(database.dialect)
    if options is None:
        return False
    wake = row["scheduled_for"] <= datetime.now(UTC)
    hooked = has_statement_hooks(database.engine)
    for _attempt in (1, 2, 3):
        try:
            if hooked:  # those listening see it go through SQLAlchemy's Connection
                with database.connect() as pooled:
                    connection = pooled.execution_options(**options)
                    with connection.begin():
                        store.insert_alone(connection, row, wake=wake)
            else:
                with database.driver_cursor() as (cursor, dialect):
                    store.insert_alone_on_cursor(cursor, dialect, row, wake=wake)
            return True
        except DBAPIError as caught:
            error, lost = caught, is_disconnect(caught)
            if not (lost or is_deadlock(caught)):
                raise operational_error(database.engine, caught) from caught
        # A statement lost on its way back may have committed, the last try's too: look
        # before saying no (an unreadable table says "unknown", see _written).
        if lost and _written(database, row["id"]):
            return True
    raise operational_error(database.engine, error) from error


def _written(database: Database, job_id: str) -> bool:
    try:
        with database.transaction(read_only=True) as connection:
            return store.job_exists(connection, job_id)
    except DBAPIError as error:
        raise DatabaseUnavailableError(
            f"the connection to {mask_url(database.engine.url)} was lost while job {job_id} "
            f"was being written, and it cannot be read back ({str(error.orig).strip()}); "
            "whether it was written is unknown"
        ) from error


def write_in_transaction(
    database: Database, write: Callable[[Connection], dict[int, str]], *, what: str
) -> dict[int, str]:
    """Run ``write`` in a transaction of our own, retrying on a connection lost before the
    commit was sent (a pooled connection the server closed) or a deadlock: the rows are
    written once or an error says so, never silently dropped. ``write`` must be repeatable
    (it starts from the same rows each time)."""
    for attempt in (1, 2, 3):
        with database.connect() as connection:
            try:
                transaction = connection.begin()
                existing = write(connection)
            except DBAPIError as error:
                if attempt < 3 and (is_disconnect(error) or is_deadlock(error)):
                    continue
                raise operational_error(database.engine, error) from error
            try:
                transaction.commit()
            except DBAPIError as error:
                raise commit_failed(database.engine, error, what) from error
            return existing
    raise AssertionError("unreachable")  # pragma: no cover
