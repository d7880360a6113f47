"""Clearing a queue (``jobrunner queues clear``): its waiting jobs discarded a chunk per
transaction, so a million rows never hold a long lock. A job that takes part in a workflow (a
batch member or callback, a job others depend on) or has a concurrency key (one sleeping
between its steps holds a slot) is cancelled first, which carries its end to its batch and
dependents and gives its slot back; the rest are deleted at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from jobqueue.schema import BLOCKED, PENDING, job_queue
from jobqueue.store import cancelling, operator
from jobqueue.store.dialect import locking

#: What ``queues clear`` can discard: pending jobs due now, pending jobs due later, blocked.
CLEARABLE = ("pending", "scheduled", "blocked")


def _matching(statuses: Sequence[str], now: datetime) -> ColumnElement[bool]:
    parts = []
    if "pending" in statuses:
        parts.append(and_(job_queue.c.status == PENDING, job_queue.c.scheduled_for <= now))
    if "scheduled" in statuses:
        parts.append(and_(job_queue.c.status == PENDING, job_queue.c.scheduled_for > now))
    if "blocked" in statuses:
        parts.append(job_queue.c.status == BLOCKED)
    return or_(*parts)


def clear_chunk(
    connection: Connection, queue: str, statuses: Sequence[str], now: datetime, limit: int
) -> int:
    """Discard up to ``limit`` of ``queue``'s jobs in ``statuses`` (of :data:`CLEARABLE`);
    returns how many. Rows are locked as they are read, so a job a worker claims meanwhile
    is left to it."""
    rows = connection.execute(
        locking(
            connection,
            select(
                job_queue.c.id,
                job_queue.c.concurrency_key,
                job_queue.c.batch_id,
                job_queue.c.callback_of,
                job_queue.c.has_dependents,
            )
            .where(job_queue.c.queue == queue, _matching(statuses, now))
            .limit(limit),
        )
    ).all()
    if not rows:
        return 0
    involved = [
        r.id for r in rows if r.concurrency_key or r.batch_id or r.callback_of or r.has_dependents
    ]
    taking_part = set(involved)
    plain = [r.id for r in rows if r.id not in taking_part]
    if plain:
        operator.delete_jobs(connection, plain, statuses=(PENDING, BLOCKED))
    if involved:
        cancelled = cancelling.cancel_waiting(connection, involved, now)
        operator.delete_jobs(connection, sorted(cancelled))
    return len(rows)


def clearable_counts(connection: Connection, queue: str, now: datetime) -> dict[str, int]:
    """{pending, scheduled, blocked: how many of ``queue``'s jobs a clear would discard}."""
    return {
        status: int(
            connection.execute(
                select(func.count())
                .select_from(job_queue)
                .where(job_queue.c.queue == queue, _matching([status], now))
            ).scalar_one()
        )
        for status in CLEARABLE
    }
