"""Operators' SQL: retry, cancel, discard, prune, pause and resume queues, and the per-queue
counts (listing jobs is :mod:`jobqueue.store.listing`). :class:`jobqueue.admin.Admin` wraps each
in a transaction.

An operator's retry is the only way out of a terminal state; every other change here is
guarded by the status it expects, so it cannot race a worker into an impossible state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)

from jobqueue.schema import (
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TERMINAL_STATUSES,
    job_cancellations,
    job_queue,
    job_queue_pauses,
)
from jobqueue.store import workflow
from jobqueue.store.dependencies import delete_edges
from jobqueue.store.dialect import locking, notify_enqueued
from jobqueue.store.due import waiting_status
from jobqueue.store.history import delete_history
from jobqueue.store.steps import delete_steps, drop_steps_from

#: An expired job can be retried too: the operator's retry clears its deadline.
_RETRYABLE = (FAILED, CANCELLED, EXPIRED)


def missing_ids(connection: Connection, job_ids: Sequence[str]) -> list[str]:
    """Those of ``job_ids`` that name no job, in the given order."""
    found = set(
        connection.execute(select(job_queue.c.id).where(job_queue.c.id.in_(job_ids))).scalars()
    )
    return [job_id for job_id in job_ids if job_id not in found]


def failed_ids(connection: Connection, *, queue: str | None) -> list[str]:
    query = select(job_queue.c.id).where(job_queue.c.status == FAILED)
    if queue is not None:
        query = query.where(job_queue.c.queue == queue)
    return list(connection.execute(query).scalars())


def retry(
    connection: Connection, job_ids: Sequence[str], now: datetime, *, from_step: str | None = None
) -> list[str]:
    """Failed, cancelled or expired jobs among ``job_ids`` go back to pending, due now, with
    failed_attempts reset (``attempts`` keeps counting) and no deadline (``expires_at``: the
    operator asked for the run). Returns the ids that moved.

    ``from_step``: each job that moves also forgets that step and every step recorded after
    it, so its next run does them again (a job without that step keeps all of its steps:
    :func:`~jobqueue.store.steps.jobs_without_step` is the caller's check)."""
    retryable = job_queue.c.status.in_(_RETRYABLE)
    # Locked as read: two retries (or a retry and a discard) at once must not both reopen a
    # batch's count for the same job.
    ids = list(
        connection.execute(
            locking(
                connection,
                select(job_queue.c.id)
                .where(job_queue.c.id.in_(list(job_ids)), retryable)
                .order_by(job_queue.c.id),
            )
        ).scalars()
    )
    if not ids:
        return ids
    workflow.reopen(connection, ids)
    connection.execute(
        update(job_queue)
        .where(job_queue.c.id.in_(ids), retryable)
        .values(
            status=waiting_status(),  # blocked, if a key decides when it starts
            failed_attempts=0,
            scheduled_for=now,
            finished_at=None,
            claimed_by=None,
            expires_at=None,
        )
    )
    connection.execute(delete(job_cancellations).where(job_cancellations.c.job_id.in_(ids)))
    if from_step is not None:
        for job_id in ids:
            drop_steps_from(connection, job_id, from_step)
    if connection.dialect.name == "postgresql":
        queues = connection.execute(
            select(job_queue.c.queue).where(job_queue.c.id.in_(ids)).distinct()
        ).scalars()
        notify_enqueued(connection, queues)
    return ids


def _ids_in(connection: Connection, job_ids: Sequence[str], statuses: Sequence[str]) -> set[str]:
    query = select(job_queue.c.id).where(
        job_queue.c.id.in_(list(job_ids)), job_queue.c.status.in_(list(statuses))
    )
    return set(connection.execute(query).scalars())


def request_cancel(connection: Connection, job_ids: Sequence[str], now: datetime) -> set[str]:
    """Running jobs among ``job_ids`` are asked to stop (a request their worker passes on).
    Returns the ids of the running jobs."""
    running = _ids_in(connection, job_ids, [RUNNING])
    already = set(
        connection.execute(
            select(job_cancellations.c.job_id).where(job_cancellations.c.job_id.in_(running))
        ).scalars()
    )
    fresh = sorted(running - already)
    if fresh:
        connection.execute(
            insert(job_cancellations), [{"job_id": job_id, "requested_at": now} for job_id in fresh]
        )
    return running


def discard(connection: Connection, job_ids: Sequence[str]) -> set[str]:
    """Delete failed or cancelled jobs among ``job_ids``; returns the ids deleted."""
    deleted = _ids_in(connection, job_ids, _RETRYABLE)
    connection.execute(
        delete(job_queue).where(
            job_queue.c.id.in_(list(deleted)), job_queue.c.status.in_(_RETRYABLE)
        )
    )
    # A failed job may carry the stop request it got while running; it goes with the job.
    connection.execute(
        delete(job_cancellations).where(job_cancellations.c.job_id.in_(list(deleted)))
    )
    delete_steps(connection, sorted(deleted))
    delete_history(connection, sorted(deleted))
    delete_edges(connection, sorted(deleted))
    return deleted


def prune_batch(connection: Connection, *, status: str, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` jobs of ``status`` that finished before ``cutoff``."""
    ids = list(
        connection.execute(
            select(job_queue.c.id)
            .where(job_queue.c.status == status, job_queue.c.finished_at < cutoff)
            .limit(limit)
        ).scalars()
    )
    if ids:
        delete_jobs(connection, ids)
    return len(ids)


def delete_jobs(
    connection: Connection, ids: list[str], *, statuses: Sequence[str] = TERMINAL_STATUSES
) -> None:
    """Delete jobs (those of ``ids`` still in ``statuses``: finished ones, unless said) with
    everything kept beside them: a stop request, steps, attempt history, dependency edges."""
    connection.execute(
        delete(job_queue).where(job_queue.c.id.in_(ids), job_queue.c.status.in_(list(statuses)))
    )
    connection.execute(delete(job_cancellations).where(job_cancellations.c.job_id.in_(ids)))
    delete_steps(connection, ids)
    delete_history(connection, ids)
    delete_edges(connection, ids)


def queue_counts(
    connection: Connection, now: datetime
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[int, datetime | None]], set[str]]:
    """({queue: {status: count}} of unfinished and failed jobs, {queue: (due, oldest due
    time)}, paused queues)."""
    counts = connection.execute(
        select(job_queue.c.queue, job_queue.c.status, func.count())
        .where(job_queue.c.status.in_([PENDING, RUNNING, FAILED]))
        .group_by(job_queue.c.queue, job_queue.c.status)
    ).all()
    due = connection.execute(
        select(job_queue.c.queue, func.count(), func.min(job_queue.c.scheduled_for))
        .where(job_queue.c.status == PENDING, job_queue.c.scheduled_for <= now)
        .group_by(job_queue.c.queue)
    ).all()
    by_queue: dict[str, dict[str, int]] = {}
    for queue, status, count in counts:
        by_queue.setdefault(queue, {})[status] = count
    due_by_queue = {queue: (n, _aware(oldest)) for queue, n, oldest in due}
    return by_queue, due_by_queue, paused_queues(connection)


def _aware(value: datetime | None) -> datetime | None:
    """An aggregate's value as aware UTC (some drivers hand MIN() back without our type)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def paused_queues(connection: Connection) -> set[str]:
    return set(connection.execute(select(job_queue_pauses.c.queue)).scalars())


def pause(connection: Connection, queue: str, now: datetime) -> bool:
    """Stop workers claiming from ``queue``; False if it was already paused."""
    if queue in paused_queues(connection):
        return False
    connection.execute(insert(job_queue_pauses).values(queue=queue, paused_at=now))
    return True


def resume(connection: Connection, queue: str) -> bool:
    """Let workers claim from ``queue`` again; False if it was not paused."""
    result = connection.execute(delete(job_queue_pauses).where(job_queue_pauses.c.queue == queue))
    if result.rowcount and connection.dialect.name == "postgresql":
        notify_enqueued(connection, [queue])
    return bool(result.rowcount)


def job_counts(connection: Connection) -> dict[tuple[str, str], int]:
    """Jobs per (queue, status), succeeded excepted."""
    rows = connection.execute(
        select(job_queue.c.queue, job_queue.c.status, func.count())
        .where(job_queue.c.status.in_([s for s in STATUSES if s != SUCCEEDED]))
        .group_by(job_queue.c.queue, job_queue.c.status)
    ).all()
    return {(queue, status): int(count) for queue, status, count in rows}
