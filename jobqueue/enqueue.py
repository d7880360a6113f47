"""Writing calls: :class:`~jobqueue.calls.JobCall` objects become rows, written in one
transaction (the caller's, or one of our own), or run at once in inline mode.

A single plain job is one self-committing statement where the backend allows it; a lost answer
is settled by reading the job's own id back, so a job is written once or an error says so,
never silently dropped nor doubled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Connection

from jobqueue import tracing
from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.database import Database
from jobqueue.errors import QueueFullError
from jobqueue.job_rows import is_plain_batch, job_rows, job_values, queue_bounds
from jobqueue.store import jobs as store
from jobqueue.store.depends_on import Needs
from jobqueue.store.jobs import FLOW_COLUMNS
from jobqueue.writes import insert_alone, write_in_transaction

if TYPE_CHECKING:
    from jobqueue.calls import AnySession

#: Inline mode's runner, set by :func:`jobqueue.testing.inline`: enqueue hands it the rows
#: instead of writing them, and it runs each job at once, in-process, returning their results.
#: A callable, so the runner (which records durable steps) lives above this module.
InlineRunner: TypeAlias = Callable[[Sequence[dict[str, Any]]], list[Any]]
inline_mode: ContextVar[InlineRunner | None] = ContextVar("jobqueue_inline", default=None)

#: The open ``with batch(...)`` block's collector, set by :mod:`jobqueue.batches`: enqueue
#: hands it the rows (ids made) instead of writing them, and the block writes them all, with
#: the batch, when it ends. A callable, since batches live above this module.
Collector: TypeAlias = Callable[
    [Database, list[dict[str, Any]], list["int | None"], list["Needs | None"]], None
]
batch_collector: ContextVar[Collector | None] = ContextVar("jobqueue_batch", default=None)


def enqueue_calls(
    database: Database,
    calls: Sequence[JobCall],
    *,
    max_payload_bytes: int,
    connection: Connection | None = None,
    session: AnySession | None = None,
    batch_id: str | None = None,
    block: float | None = None,
) -> list[EnqueuedJob]:
    """Write every call in one transaction: all of them, or (on error) none.

    With ``connection=`` or ``session=`` the rows join the caller's transaction and become
    visible to workers when the caller commits. ``batch_id``: the calls join that batch
    (written now); else, inside a ``with batch(...)`` block, they join the block's batch
    and are written when it ends. ``block``: seconds to wait for room in a full bounded
    queue (see :mod:`jobqueue.queue_config`) before raising QueueFullError.
    """
    if connection is not None and session is not None:
        raise ValueError("pass connection= or session=, not both")
    if isinstance(calls, JobCall):
        raise TypeError("enqueue_many() takes a list of JobCall, not a single JobCall")
    calls = list(calls)
    for call in calls:
        if not isinstance(call, JobCall):
            raise TypeError(f"enqueue_many() takes JobCall items (my_job.call(...)), not {call!r}")
    target = _Target(connection, session, batch_id, block)
    if block is not None and (connection is not None or session is not None):
        raise ValueError(
            "block= waits between transactions of its own; with connection= or session= "
            "catch QueueFullError instead"
        )
    if not tracing.recording():
        return _write(database, calls, max_payload_bytes, target, None)
    with tracing.sending([call.queue for call in calls]) as (span, trace_context):
        handles = _write(database, calls, max_payload_bytes, target, trace_context)
        tracing.sent(span, [handle.id for handle in handles])
        return handles


@dataclass(frozen=True)
class _Target:
    """Where enqueued rows go: the caller's transaction, and the batch they join."""

    connection: Connection | None
    session: AnySession | None
    batch_id: str | None
    #: Seconds to wait for room in a full bounded queue (None: raise at once).
    block: float | None = None


def _write(
    database: Database,
    calls: list[JobCall],
    max_payload_bytes: int,
    target: _Target,
    trace_context: str | None,
) -> list[EnqueuedJob]:
    plain = target.batch_id is None and inline_mode.get() is None and batch_collector.get() is None
    if plain and is_plain_batch(database, calls):
        return _write_plain(database, calls, max_payload_bytes, target, trace_context)
    rows, handles = job_rows(database, calls, max_payload_bytes, trace_context)
    if target.batch_id is not None:
        for row in rows:
            row["batch_id"] = target.batch_id
    limits = [call.concurrency_limit for call in calls]
    debounced = {index for index, call in enumerate(calls) if call.debounce is not None}
    needs = [
        Needs(call.depends_on, call.on_dependency_failure == "run") if call.depends_on else None
        for call in calls
    ]
    runner = inline_mode.get()
    if runner is not None:
        # Inline, a dependency ran (and succeeded) when it was enqueued: nothing to wait for.
        results = runner(rows)
        return [replace(h, inline_result=(r,)) for h, r in zip(handles, results, strict=True)]
    collector = batch_collector.get()
    if debounced and (target.batch_id is not None or collector is not None):
        raise ValueError("a debounced job cannot join a batch (it may stand for many calls)")
    if collector is not None and target.batch_id is None:
        if target.connection is not None or target.session is not None:
            raise ValueError(
                "inside a `with batch(...)` block jobs are written when the block ends: "
                "pass connection= or session= to batch() instead"
            )
        collector(database, rows, limits, needs)
        return handles
    connection = target.session.connection() if target.session is not None else target.connection
    bounds = queue_bounds(database)
    if connection is not None:
        database.verify_schema(connection)
        existing = store.insert_rows(connection, rows, limits, needs, bounds, debounced)
    else:
        database.verify_schema()
        existing = _insert_own(database, rows, limits, needs, target, debounced)
    for index, job_id in existing.items():
        handles[index] = replace(handles[index], id=job_id, existing=True)
    # No per-job log line here: enqueue runs in the caller's process, whose logging is the
    # caller's; an unconfigured structlog would print every job at DEBUG.
    return handles


def _write_plain(
    database: Database,
    calls: list[JobCall],
    max_payload_bytes: int,
    target: _Target,
    trace_context: str | None,
) -> list[EnqueuedJob]:
    """A plain batch (:func:`~jobqueue.job_rows.is_plain_batch`) written from its value
    tuples: no row dictionaries, none of the general write's lookups (PostgreSQL's COPY takes
    them as they are)."""
    values, handles = job_values(database, calls, max_payload_bytes, trace_context)
    connection = target.session.connection() if target.session is not None else target.connection
    if connection is not None:
        database.verify_schema(connection)
        store.insert_plain_jobs(connection, values)
        return handles

    def write(connection: Connection) -> dict[int, str]:
        store.insert_plain_jobs(connection, values)
        return {}

    database.verify_schema()
    write_in_transaction(database, write, what=f"{len(values)} job(s)")
    return handles


def _insert_own(
    database: Database,
    rows: list[dict[str, Any]],
    limits: list[int | None],
    needs: list[Needs | None],
    target: _Target,
    debounced: set[int],
) -> dict[int, str]:
    """Rows written in a transaction of our own: one plain job as one statement; into a full
    bounded queue, tried again until ``target.block`` has passed."""
    bounds = queue_bounds(database)
    plain = limits[0] is None and needs[0] is None and target.batch_id is None
    alone = (
        len(rows) == 1
        and rows[0]["unique_key"] is None
        and not FLOW_COLUMNS & rows[0].keys()
        and plain
    )
    if alone and rows[0]["queue"] not in bounds and insert_alone(database, rows[0]):
        return {}
    deadline = None if target.block is None else time.monotonic() + target.block
    pause = 0.02
    while True:
        try:
            return write_in_transaction(
                database,
                lambda c: store.insert_rows(c, rows, limits, needs, bounds, debounced),
                what=f"{len(rows)} job(s)",
            )
        except QueueFullError:
            left = 0.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise
            wait_for_room(min(pause, left))
            pause = min(pause * 2, 0.5)


def wait_for_room(seconds: float) -> None:
    """Room in a full queue comes as workers claim its jobs, in other processes: poll for it,
    backing off (the caller doubles the wait up to half a second)."""
    time.sleep(seconds)
