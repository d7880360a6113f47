"""Bounded queues (``max_pending``): before jobs are written into a bounded queue, its row in
``job_queue_bounds`` is locked and its waiting jobs counted, so concurrent producers take
turns and the bound holds however many of them there are. The bound applies to enqueues
(producers); a batch's callbacks and a retry are never refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from jobqueue.errors import QueueFullError
from jobqueue.schema import BLOCKED, PENDING, WAITING, job_queue, job_queue_bounds
from jobqueue.store.dialect import insert_ignoring_duplicate, locking

#: The statuses counted against a bound: every job that has not started.
WAITING_STATUSES = (PENDING, BLOCKED, WAITING)


def make_room(
    connection: Connection, rows: Sequence[Mapping[str, Any]], bounds: Mapping[str, int]
) -> None:
    """Raise :class:`~jobqueue.errors.QueueFullError` (having written nothing) if ``rows``
    would take a bounded queue past its bound; else return with the bounded queues' rows
    locked until the caller's transaction ends. Queues are locked in name order, so two
    producers writing into the same two queues never deadlock."""
    adding = Counter(row["queue"] for row in rows if row["queue"] in bounds)
    for queue in sorted(adding):
        bound = bounds[queue]
        _lock(connection, queue, bound)
        waiting = waiting_jobs(connection, queue)
        if waiting + adding[queue] > bound:
            raise QueueFullError(
                f"queue {queue!r} is full: {waiting} job(s) waiting, max_pending = {bound}; "
                f"{adding[queue]} more would not fit (nothing was written)",
                queue=queue,
                max_pending=bound,
                waiting=waiting,
            )


def _lock(connection: Connection, queue: str, bound: int) -> None:
    """Lock the queue's bound row, creating it first if it is new. Read-then-insert rather
    than insert-then-lock: on MySQL an INSERT IGNORE of an existing row takes a shared lock
    that two producers would both then try to upgrade (a deadlock on every enqueue)."""
    query = locking(
        connection, select(job_queue_bounds.c.queue).where(job_queue_bounds.c.queue == queue)
    )
    if connection.execute(query).first() is None:
        connection.execute(
            insert_ignoring_duplicate(connection.dialect.name, job_queue_bounds, ["queue"]).values(
                queue=queue, max_pending=bound
            )
        )
        connection.execute(query)


def waiting_jobs(connection: Connection, queue: str) -> int:
    """How many jobs of ``queue`` have not started (read from the status-and-queue index)."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(job_queue)
            .where(job_queue.c.status.in_(WAITING_STATUSES), job_queue.c.queue == queue)
        ).scalar_one()
    )
