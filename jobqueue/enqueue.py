"""Writing calls: :class:`~jobqueue.calls.JobCall` objects become rows, written in one
transaction (the caller's, or one of our own), or run at once in inline mode.

A single plain job is one self-committing statement where the backend allows it; a lost answer
is settled by reading the job's own id back, so a job is written once or an error says so,
never silently dropped nor doubled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from ulid import ULID

from jobqueue import tracing
from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.database import Database
from jobqueue.db import autocommit_options, mask_url
from jobqueue.db_errors import commit_failed, is_deadlock, is_disconnect, operational_error
from jobqueue.errors import DatabaseUnavailableError
from jobqueue.schema import PENDING
from jobqueue.serialization import encode_arguments
from jobqueue.store import jobs as store

if TYPE_CHECKING:
    from jobqueue.calls import AnySession

#: Inline mode's runner, set by :func:`jobqueue.testing.inline`: enqueue hands it the rows
#: instead of writing them, and it runs each job at once, in-process, returning their results.
#: A callable, so the runner (which records durable steps) lives above this module.
InlineRunner: TypeAlias = Callable[[Sequence[dict[str, Any]]], list[Any]]
inline_mode: ContextVar[InlineRunner | None] = ContextVar("jobqueue_inline", default=None)


def enqueue_calls(
    database: Database,
    calls: Sequence[JobCall],
    *,
    max_payload_bytes: int,
    connection: Connection | None = None,
    session: AnySession | None = None,
) -> list[EnqueuedJob]:
    """Write every call in one transaction: all of them, or (on error) none.

    With ``connection=`` or ``session=`` the rows join the caller's transaction and become
    visible to workers when the caller commits.
    """
    if connection is not None and session is not None:
        raise ValueError("pass connection= or session=, not both")
    if isinstance(calls, JobCall):
        raise TypeError("enqueue_many() takes a list of JobCall, not a single JobCall")
    calls = list(calls)
    for call in calls:
        if not isinstance(call, JobCall):
            raise TypeError(f"enqueue_many() takes JobCall items (my_job.call(...)), not {call!r}")
    if not tracing.recording():
        return _write(database, calls, max_payload_bytes, connection, session, None)
    with tracing.sending([call.queue for call in calls]) as (span, trace_context):
        handles = _write(database, calls, max_payload_bytes, connection, session, trace_context)
        tracing.sent(span, [handle.id for handle in handles])
        return handles


def _write(
    database: Database,
    calls: list[JobCall],
    max_payload_bytes: int,
    connection: Connection | None,
    session: AnySession | None,
    trace_context: str | None,
) -> list[EnqueuedJob]:
    rows, handles = _rows(database, calls, max_payload_bytes)
    if trace_context is not None:
        for row in rows:
            row["trace_context"] = trace_context
    limits = [call.concurrency_limit for call in calls]
    runner = inline_mode.get()
    if runner is not None:
        results = runner(rows)
        return [replace(h, inline_result=(r,)) for h, r in zip(handles, results, strict=True)]
    if session is not None:
        connection = session.connection()
    if connection is not None:
        database.verify_schema(connection)
        existing = store.insert_rows(connection, rows, limits)
    else:
        database.verify_schema()
        alone = len(rows) == 1 and rows[0]["unique_key"] is None and limits[0] is None
        if alone and _insert_alone(database, rows[0]):
            existing = {}
        else:
            existing = _insert_own_transaction(database, rows, limits)
    for index, job_id in existing.items():
        handles[index] = replace(handles[index], id=job_id, existing=True)
    # No per-job log line here: enqueue runs in the caller's process, whose logging is the
    # caller's; an unconfigured structlog would print every job at DEBUG.
    return handles


def _rows(
    database: Database, calls: list[JobCall], max_payload_bytes: int
) -> tuple[list[dict[str, Any]], list[EnqueuedJob]]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    handles: list[EnqueuedJob] = []
    for call in calls:
        job_id = str(ULID())
        scheduled_for = call.scheduled_for or now
        unique_key = call.unique_key
        rows.append(
            {
                "id": job_id,
                "name": call.name,
                "args": encode_arguments(call.args, call.kwargs, max_bytes=max_payload_bytes),
                "queue": call.queue,
                "priority": call.priority,
                "status": PENDING,
                "scheduled_for": scheduled_for,
                "attempts": 0,
                "failed_attempts": 0,
                "max_attempts": call.max_attempts,
                "created_at": now,
                "concurrency_key": call.concurrency_key,
                "trace_context": None,  # set by the caller when a trace is being recorded
                "unique_key": (
                    hashlib.sha256(unique_key.encode()).hexdigest()
                    if unique_key is not None
                    else None
                ),
            }
        )
        handles.append(EnqueuedJob(job_id, call.name, call.queue, scheduled_for, database))
    return rows, handles


def _insert_alone(database: Database, row: dict[str, Any]) -> bool:
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
    for _attempt in (1, 2, 3):
        with database.connect() as pooled:
            connection = pooled.execution_options(**options)
            try:
                with connection.begin():
                    store.insert_alone(connection, row, wake=wake)
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


def _insert_own_transaction(
    database: Database, rows: list[dict[str, Any]], limits: list[int | None]
) -> dict[int, str]:
    """Insert in a transaction of our own, retrying once on a connection lost before the
    commit was sent (a pooled connection the server closed): the jobs are written once or an
    error says so, never silently dropped. A deadlock victim is retried the same way."""
    for attempt in (1, 2, 3):
        with database.connect() as connection:
            try:
                transaction = connection.begin()
                existing = store.insert_rows(connection, rows, limits)
            except DBAPIError as error:
                if attempt < 3 and (is_disconnect(error) or is_deadlock(error)):
                    continue
                raise operational_error(database.engine, error) from error
            try:
                transaction.commit()
            except DBAPIError as error:
                raise commit_failed(database.engine, error, f"{len(rows)} job(s)") from error
            return existing
    raise AssertionError("unreachable")  # pragma: no cover
