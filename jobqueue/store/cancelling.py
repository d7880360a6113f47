"""Cancelling jobs that have not started (waiting, pending, blocked): the one place it is done,
for operators (``jobs cancel``, ``batches cancel``, ``queues clear``) and for jobs added to a
batch that was cancelled. Their end is carried through batches and dependents in the same
transaction; a job sleeping between its steps gives its concurrency slot back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update

from jobqueue.schema import BLOCKED, CANCELLED, PENDING, WAITING, job_queue
from jobqueue.store import workflow
from jobqueue.store.dependencies import Ended
from jobqueue.store.dialect import locking
from jobqueue.store.semaphores import release_slots


def cancel_waiting(connection: Connection, job_ids: Sequence[str], now: datetime) -> set[str]:
    """Waiting, pending or blocked jobs among ``job_ids`` become cancelled, and the end is
    carried to their batches and dependents
    (:mod:`~jobqueue.store.workflow`). Rows are locked first (where the database has row
    locks), so a job a worker claims meanwhile is not counted as cancelled. Returns the ids
    cancelled."""
    unstarted = [WAITING, PENDING, BLOCKED]
    rows = connection.execute(
        locking(
            connection,
            select(
                job_queue.c.id,
                job_queue.c.status,
                job_queue.c.concurrency_key,
                job_queue.c.batch_id,
                job_queue.c.callback_of,
                job_queue.c.has_dependents,
            )
            .where(job_queue.c.id.in_(list(job_ids)), job_queue.c.status.in_(unstarted))
            .order_by(job_queue.c.id),
        )
    ).all()
    if not rows:
        return set()
    connection.execute(
        update(job_queue)
        .where(job_queue.c.id.in_([r.id for r in rows]), job_queue.c.status.in_(unstarted))
        .values(status=CANCELLED, finished_at=now, unique_key=None, open_dependencies=None)
    )
    # A pending job with a concurrency key slept between its steps, keeping its slot.
    keys = [r.concurrency_key for r in rows if r.status == PENDING and r.concurrency_key]
    if keys:
        release_slots(connection, keys)
    ended = [
        Ended(r.id, CANCELLED, r.batch_id, r.callback_of, bool(r.has_dependents))
        for r in rows
        if r.batch_id or r.callback_of or r.has_dependents
    ]
    if ended:
        workflow.finish(connection, ended, now)
    return {r.id for r in rows}
