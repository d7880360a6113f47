"""Operator actions on queues: their counts, pause and resume, and clearing one's waiting jobs
(the queue half of :class:`~jobqueue.admin.Admin`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from jobqueue.database import Database
from jobqueue.options import validate_queue_name
from jobqueue.reports import QueueSummary
from jobqueue.schema import FAILED, PENDING, RUNNING
from jobqueue.store import operator, purge
from jobqueue.store.purge import CLEARABLE

log = structlog.get_logger("jobqueue.admin")

#: Jobs discarded per transaction by :meth:`QueueAdmin.clear_queue`.
CLEAR_CHUNK = 1000


def check_queue(queue: str) -> None:
    validate_queue_name(queue)
    if "\x00" in queue:
        raise ValueError("a queue name cannot contain a NUL byte")


class QueueAdmin:
    """Operator actions on the queues of one database."""

    jobqueue: Database

    def queues(self) -> list[QueueSummary]:
        now = datetime.now(UTC)
        with self.jobqueue.transaction(read_only=True) as connection:
            by_queue, due_by_queue, paused = operator.queue_counts(connection, now)
        summaries = []
        for queue in sorted(set(by_queue) | paused):
            counts = by_queue.get(queue, {})
            due, oldest = due_by_queue.get(queue, (0, None))
            summaries.append(
                QueueSummary(
                    queue=queue,
                    pending=counts.get(PENDING, 0),
                    due=due,
                    running=counts.get(RUNNING, 0),
                    failed=counts.get(FAILED, 0),
                    paused=queue in paused,
                    latency_seconds=(now - oldest).total_seconds() if oldest else None,
                )
            )
        return summaries

    def pause(self, queue: str) -> bool:
        """Stop workers claiming from ``queue``; returns False if it was already paused."""
        check_queue(queue)
        with self.jobqueue.transaction() as connection:
            paused = operator.pause(connection, queue, datetime.now(UTC))
        if paused:
            log.info("queue_paused", queue=queue)
        return paused

    def resume(self, queue: str) -> bool:
        """Let workers claim from ``queue`` again; returns False if it was not paused."""
        check_queue(queue)
        with self.jobqueue.transaction() as connection:
            resumed = operator.resume(connection, queue)
        if resumed:
            log.info("queue_resumed", queue=queue)
        return resumed

    def clearable(self, queue: str) -> dict[str, int]:
        """How many of ``queue``'s jobs :meth:`clear_queue` would discard, by status."""
        check_queue(queue)
        with self.jobqueue.transaction(read_only=True) as connection:
            return purge.clearable_counts(connection, queue, datetime.now(UTC))

    def clear_queue(self, queue: str, *, statuses: Sequence[str] = CLEARABLE) -> int:
        """Discard ``queue``'s waiting jobs in ``statuses`` (``pending``: due now,
        ``scheduled``: due later, ``blocked``; all three by default), a thousand per
        transaction so that a million rows never hold a long lock. Jobs in a batch, jobs others
        depend on and jobs holding a concurrency slot are cancelled on the way, so batches
        still finish, dependents are cancelled and slots pass on. Returns how many."""
        check_queue(queue)
        unknown = sorted(set(statuses) - set(CLEARABLE))
        if unknown or not statuses:
            what = ", ".join(unknown) or "nothing"
            raise ValueError(f"cannot clear {what}: choose from {', '.join(CLEARABLE)}")
        total = 0
        while True:
            with self.jobqueue.transaction() as connection:
                cleared = purge.clear_chunk(
                    connection, queue, list(statuses), datetime.now(UTC), CLEAR_CHUNK
                )
            total += cleared
            if cleared < CLEAR_CHUNK:
                break
        log.info("queue_cleared", queue=queue, statuses=list(statuses), count=total)
        return total
