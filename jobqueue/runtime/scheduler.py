"""The scheduler: enqueues each due occurrence of the recurring tasks exactly once.

Every occurrence is claimed by inserting ``(task, UTC fire time)`` into ``job_recurring_runs``
in the same transaction as the enqueue; the primary key lets exactly one of any number of
supervisors win. Only the latest occurrence that is due is ever enqueued, so downtime yields one
catch-up run, not a backfill; on a task's first-ever start the current occurrence is recorded
as a baseline and not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from jobqueue.errors import ConfigurationError
from jobqueue.queue import JobQueue
from jobqueue.recurring import RecurringTask
from jobqueue.registry import registry
from jobqueue.store import recurring

log = structlog.get_logger("jobqueue.scheduler")

#: How long recorded occurrences are kept (the latest of each task is always kept).
RUNS_KEPT = timedelta(days=1)


class Scheduler:
    """Enqueues due occurrences; call :meth:`tick` about once a second."""

    def __init__(self, jobqueue: JobQueue, tasks: Sequence[RecurringTask]) -> None:
        keys = [task.key for task in tasks]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise ConfigurationError(f"recurring task(s) defined twice: {', '.join(duplicates)}")
        self.jobqueue = jobqueue
        self.tasks = list(tasks)
        self._latest: dict[str, datetime | None] = {}

    def tick(self, now: datetime | None = None) -> list[str]:
        """Enqueue whatever became due; returns the ids of the jobs this call enqueued."""
        now = now or datetime.now(UTC)
        if self.tasks and not self._latest:
            self._load()
        enqueued = []
        for task in self.tasks:
            occurrence = task.latest_occurrence(now)
            latest = self._latest.get(task.key)
            if occurrence is None or (latest is not None and occurrence <= latest):
                continue
            job_id = self._fire(task, occurrence, baseline=latest is None)
            self._latest[task.key] = occurrence
            if job_id is not None:
                enqueued.append(job_id)
        return enqueued

    def _load(self) -> None:
        with self.jobqueue.transaction(read_only=True) as connection:
            latest = recurring.latest_runs(connection, [task.key for task in self.tasks])
        self._latest = {task.key: None for task in self.tasks}
        self._latest.update(latest)

    def _fire(self, task: RecurringTask, fire_at: datetime, *, baseline: bool) -> str | None:
        """Record the occurrence and enqueue its job, unless another supervisor already did
        (or, on a first-ever start, only record it)."""
        try:
            with self.jobqueue.transaction() as connection:
                job_id = None if baseline else self._enqueue(connection, task, fire_at)
                recurring.record_run(connection, task.key, fire_at, job_id)
        except IntegrityError:
            return None  # another scheduler fired this occurrence: the whole transaction is undone
        if job_id is not None:
            log.info(
                "recurring_task_enqueued",
                task=task.key,
                job_id=job_id,
                job_name=task.job_name,
                fire_at=fire_at.isoformat(),
            )
        return job_id

    def _enqueue(self, connection: Connection, task: RecurringTask, fire_at: datetime) -> str:
        (handle,) = self.jobqueue.enqueue_many(
            [task.call(registry, fire_at)], connection=connection
        )
        return handle.id

    def prune_runs(self, *, keep: timedelta = RUNS_KEPT, now: datetime | None = None) -> int:
        """Delete each task's recorded occurrences older than ``keep``, except its latest.

        Only the latest occurrence is ever compared against (a later one is fired, an earlier
        one never), so the rest is history; without pruning, a task that fires every minute
        would leave half a million rows a year. The margin of ``keep`` covers a supervisor whose
        clock runs behind: it may still try an occurrence the others recorded a while ago, and
        that occurrence's row must still be there to refuse it. Returns the rows deleted.
        """
        before = (now or datetime.now(UTC)) - keep
        with self.jobqueue.transaction() as connection:
            return recurring.prune_runs(connection, before=before)

    def next_runs(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """Each task's next fire time (for the dashboard and ``jobrunner recurring``)."""
        now = now or datetime.now(UTC)
        return {task.key: task.next_occurrence(now) for task in self.tasks}
