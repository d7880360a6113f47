"""Operating the queue: inspect, retry, cancel, discard, pause, prune, and read the counters.

The same functions back the ``jobrunner`` commands and the Python API (``JobQueue.admin``).
An operator's retry is the only way out of a terminal state; every other change here is
guarded by the status it expects, so it cannot race a worker into an impossible state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, and_, delete, func, insert, literal_column, select, update

from jobqueue import counters, processes, semaphores, store
from jobqueue.errors import JobQueueError
from jobqueue.queue import JobQueue
from jobqueue.schema import (
    BLOCKED,
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TERMINAL_STATUSES,
    job_cancellations,
    job_queue,
    job_queue_pauses,
    job_semaphores,
    job_stats,
)
from jobqueue.store import JobRecord

log = structlog.get_logger("jobqueue.admin")

PRUNE_BATCH = 1000
COMMON_ROWS = 2000  # see Admin._common


class NotFoundError(JobQueueError):
    """An id names no job."""


@dataclass(frozen=True)
class QueueSummary:
    queue: str
    pending: int  # due or scheduled
    due: int
    running: int
    failed: int
    paused: bool
    latency_seconds: float | None  # age of the oldest due job


@dataclass(frozen=True)
class Stats:
    minutes: int
    succeeded: int
    retried: int
    failed: int
    discarded: int

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.discarded

    @property
    def per_second(self) -> float:
        return self.processed / (self.minutes * 60)

    @property
    def failure_rate(self) -> float:
        """Failed attempts (retried or final) per attempt."""
        attempts = self.succeeded + self.retried + self.failed + self.discarded
        return (self.retried + self.failed) / attempts if attempts else 0.0


@dataclass(frozen=True)
class MinuteStats:
    """Outcomes recorded in one minute (the dashboard's throughput chart)."""

    minute: datetime
    succeeded: int
    retried: int
    failed: int
    discarded: int

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.discarded


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str]  # pending/blocked jobs that will never run
    requested: list[str]  # running jobs asked to stop
    unchanged: list[str]  # already finished


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")


class Admin:
    """Operator actions on one :class:`JobQueue`."""

    def __init__(self, jobqueue: JobQueue) -> None:
        self.jobqueue = jobqueue

    # -- jobs ---------------------------------------------------------------------------------

    def list_jobs(
        self,
        *,
        status: str | None = None,
        queue: str | None = None,
        name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[JobRecord]:
        """Newest first; page with ``before=<last id seen>`` (keyset on the ULID, not OFFSET)."""
        _check_status(status)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self.jobqueue.transaction(read_only=True) as connection:
            walk = connection.dialect.name == "sqlite" and self._common(connection, status, queue)
            # "+column" keeps SQLite from using an index on that column (as in claims.py).
            status_column: Any = literal_column("+job_queue.status") if walk else job_queue.c.status
            queue_column: Any = literal_column("+job_queue.queue") if walk else job_queue.c.queue
            query = select(job_queue).order_by(job_queue.c.id.desc()).limit(limit)
            if status is not None:
                query = query.where(status_column == status)
                if status in TERMINAL_STATUSES:
                    # Always true for these statuses; said so that PostgreSQL and SQLite may
                    # use ix_job_queue_status_queue, which indexes only finished rows.
                    query = query.where(job_queue.c.finished_at.is_not(None))
            if queue is not None:
                query = query.where(queue_column == queue)
            if name is not None:
                query = query.where(job_queue.c.name == name)
            if before is not None:
                query = query.where(job_queue.c.id < before)
            return [JobRecord.from_row(row) for row in connection.execute(query).mappings()]

    @staticmethod
    def _common(connection: Connection, status: str | None, queue: str | None) -> bool:
        """Whether a listing filtered on status alone or queue alone should walk the primary
        key newest first, checking each row, rather than fetch every match and sort it.

        SQLite keeps no statistics unless someone runs ANALYZE, so its planner always takes
        the index on the filtered column and sorts all its rows: 1.2 s for the succeeded jobs
        among a million. A probe that counts at most COMMON_ROWS matches in that index (well
        under a millisecond) tells which plan wins: with that many matches the walk meets a
        page of them soon; with fewer, sorting them is cheap. Status and queue together are
        served by ix_job_queue_status_queue in id order already.
        """
        if (status is None) == (queue is None):
            return False
        condition = job_queue.c.status == status if status else job_queue.c.queue == queue
        matches = select(job_queue.c.id).where(condition).limit(COMMON_ROWS).subquery()
        found = connection.execute(select(func.count()).select_from(matches)).scalar_one()
        return int(found) >= COMMON_ROWS

    def get_job(self, job_id: str) -> JobRecord:
        job = self.jobqueue.get_job(job_id)
        if job is None:
            raise NotFoundError(f"no job with id {job_id!r}")
        return job

    def _require(self, connection: Connection, job_ids: Sequence[str]) -> None:
        found = set(
            connection.execute(select(job_queue.c.id).where(job_queue.c.id.in_(job_ids))).scalars()
        )
        missing = [job_id for job_id in job_ids if job_id not in found]
        if missing:
            raise NotFoundError(f"no job with id {', '.join(map(repr, missing))}")

    def retry(self, job_ids: Sequence[str]) -> list[str]:
        """Failed or cancelled jobs go back to pending, due now, with failed_attempts reset
        (``attempts`` keeps counting). Returns the ids that moved."""
        ids = list(dict.fromkeys(job_ids))
        now = datetime.now(UTC)
        with self.jobqueue.transaction() as connection:
            self._require(connection, ids)
            moved = set(self._retry_where(connection, job_queue.c.id.in_(ids), now))
        return [job_id for job_id in ids if job_id in moved]

    def retry_all_failed(self, *, queue: str | None = None) -> list[str]:
        condition = job_queue.c.status == FAILED
        if queue is not None:
            condition = and_(condition, job_queue.c.queue == queue)
        with self.jobqueue.transaction() as connection:
            return self._retry_where(connection, condition, datetime.now(UTC))

    def _retry_where(self, connection: Connection, condition: object, now: datetime) -> list[str]:
        retryable = job_queue.c.status.in_([FAILED, CANCELLED])
        ids = list(
            connection.execute(select(job_queue.c.id).where(condition, retryable)).scalars()  # type: ignore[arg-type]
        )
        if ids:
            connection.execute(
                update(job_queue)
                .where(job_queue.c.id.in_(ids), retryable)
                .values(
                    status=PENDING,
                    failed_attempts=0,
                    scheduled_for=now,
                    finished_at=None,
                    claimed_by=None,
                )
            )
            self._reacquire_slots(connection, ids)
            connection.execute(delete(job_cancellations).where(job_cancellations.c.job_id.in_(ids)))
            if connection.dialect.name == "postgresql":
                queues = connection.execute(
                    select(job_queue.c.queue).where(job_queue.c.id.in_(ids)).distinct()
                ).scalars()
                store.notify_enqueued(connection, queues)
        for job_id in ids:
            log.info("job_retried_by_operator", job_id=job_id)
        return ids

    def _reacquire_slots(self, connection: Connection, ids: list[str]) -> None:
        """Retried jobs with a concurrency key take a slot again, or wait as blocked."""
        rows = connection.execute(
            select(job_queue.c.id, job_queue.c.concurrency_key, job_semaphores.c.max_running)
            .join(job_semaphores, job_semaphores.c.key == job_queue.c.concurrency_key)
            .where(job_queue.c.id.in_(ids))
            .order_by(job_queue.c.id)
        ).all()
        for job_id, key, limit in rows:
            if not semaphores.acquire_slot(connection, key, limit):
                connection.execute(
                    update(job_queue).where(job_queue.c.id == job_id).values(status=BLOCKED)
                )

    def cancel(self, job_ids: Sequence[str]) -> CancelResult:
        """Pending or blocked jobs become cancelled and never run; running jobs are asked to
        stop (the job sees it through :func:`jobqueue.cancel_requested`)."""
        ids = list(dict.fromkeys(job_ids))
        now = datetime.now(UTC)
        with self.jobqueue.transaction() as connection:
            self._require(connection, ids)
            waiting = list(
                connection.execute(
                    select(job_queue.c.id).where(
                        job_queue.c.id.in_(ids), job_queue.c.status.in_([PENDING, BLOCKED])
                    )
                ).scalars()
            )
            if waiting:
                # A pending job with a concurrency key holds a slot: pass it on.
                holders = connection.execute(
                    select(job_queue.c.concurrency_key).where(
                        job_queue.c.id.in_(waiting),
                        job_queue.c.status == PENDING,
                        job_queue.c.concurrency_key.is_not(None),
                    )
                ).scalars()
                keys = list(holders)
                connection.execute(
                    update(job_queue)
                    .where(job_queue.c.id.in_(waiting), job_queue.c.status.in_([PENDING, BLOCKED]))
                    .values(status=CANCELLED, finished_at=now, unique_key=None)
                )
                if keys:
                    semaphores.release_slots(connection, keys)
            running = list(
                connection.execute(
                    select(job_queue.c.id).where(
                        job_queue.c.id.in_(ids), job_queue.c.status == RUNNING
                    )
                ).scalars()
            )
            already = set(
                connection.execute(
                    select(job_cancellations.c.job_id).where(
                        job_cancellations.c.job_id.in_(running)
                    )
                ).scalars()
            )
            fresh = [job_id for job_id in running if job_id not in already]
            if fresh:
                connection.execute(
                    insert(job_cancellations),
                    [{"job_id": job_id, "requested_at": now} for job_id in fresh],
                )
        waiting = [job_id for job_id in ids if job_id in set(waiting)]  # the caller's order
        running = [job_id for job_id in ids if job_id in set(running)]
        for job_id in waiting:
            log.info("job_cancelled", job_id=job_id)
        for job_id in running:
            log.info("job_cancel_requested", job_id=job_id)
        unchanged = [job_id for job_id in ids if job_id not in waiting and job_id not in running]
        return CancelResult(waiting, running, unchanged)

    def discard(self, job_ids: Sequence[str]) -> list[str]:
        """Delete failed or cancelled jobs for good. Returns the ids deleted."""
        ids = list(dict.fromkeys(job_ids))
        with self.jobqueue.transaction() as connection:
            self._require(connection, ids)
            finished = job_queue.c.status.in_([FAILED, CANCELLED])
            deleted = list(
                connection.execute(
                    select(job_queue.c.id).where(job_queue.c.id.in_(ids), finished)
                ).scalars()
            )
            connection.execute(delete(job_queue).where(job_queue.c.id.in_(deleted), finished))
        for job_id in deleted:
            log.info("job_discarded_by_operator", job_id=job_id)
        return deleted

    def prune(self, *, status: str, older_than: timedelta, max_batches: int | None = None) -> int:
        """Delete finished jobs of ``status`` that finished more than ``older_than`` ago, in
        small batches (each its own transaction) so claiming is never blocked for long."""
        if status not in (SUCCEEDED, FAILED, CANCELLED):
            raise ValueError("only succeeded, failed or cancelled jobs can be pruned")
        cutoff = datetime.now(UTC) - older_than
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            with self.jobqueue.transaction() as connection:
                ids = list(
                    connection.execute(
                        select(job_queue.c.id)
                        .where(job_queue.c.status == status, job_queue.c.finished_at < cutoff)
                        .limit(PRUNE_BATCH)
                    ).scalars()
                )
                if ids:
                    connection.execute(
                        delete(job_queue).where(
                            job_queue.c.id.in_(ids), job_queue.c.status == status
                        )
                    )
                    connection.execute(
                        delete(job_cancellations).where(job_cancellations.c.job_id.in_(ids))
                    )
            total += len(ids)
            if len(ids) < PRUNE_BATCH:
                break
        if total:
            log.info("jobs_pruned", status=status, count=total)
        return total

    # -- queues -------------------------------------------------------------------------------

    def queues(self) -> list[QueueSummary]:
        now = datetime.now(UTC)
        with self.jobqueue.transaction(read_only=True) as connection:
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
            paused = set(connection.execute(select(job_queue_pauses.c.queue)).scalars())
        by_queue: dict[str, dict[str, int]] = {}
        for queue, status, count in counts:
            by_queue.setdefault(queue, {})[status] = count
        due_by_queue = {queue: (count, oldest) for queue, count, oldest in due}
        names = sorted(set(by_queue) | paused)
        summaries = []
        for queue in names:
            count, oldest = due_by_queue.get(queue, (0, None))
            oldest_aware = oldest if oldest is None or oldest.tzinfo else oldest.replace(tzinfo=UTC)
            summaries.append(
                QueueSummary(
                    queue=queue,
                    pending=by_queue.get(queue, {}).get(PENDING, 0),
                    due=count,
                    running=by_queue.get(queue, {}).get(RUNNING, 0),
                    failed=by_queue.get(queue, {}).get(FAILED, 0),
                    paused=queue in paused,
                    latency_seconds=(now - oldest_aware).total_seconds() if oldest_aware else None,
                )
            )
        return summaries

    def pause(self, queue: str) -> bool:
        """Stop workers claiming from ``queue``; returns False if it was already paused."""
        with self.jobqueue.transaction() as connection:
            exists = connection.execute(
                select(job_queue_pauses.c.queue).where(job_queue_pauses.c.queue == queue)
            ).first()
            if exists:
                return False
            connection.execute(
                insert(job_queue_pauses).values(queue=queue, paused_at=datetime.now(UTC))
            )
        log.info("queue_paused", queue=queue)
        return True

    def resume(self, queue: str) -> bool:
        """Let workers claim from ``queue`` again; returns False if it was not paused."""
        with self.jobqueue.transaction() as connection:
            result = connection.execute(
                delete(job_queue_pauses).where(job_queue_pauses.c.queue == queue)
            )
            if result.rowcount and connection.dialect.name == "postgresql":
                store.notify_enqueued(connection, [queue])
        if result.rowcount:
            log.info("queue_resumed", queue=queue)
        return bool(result.rowcount)

    # -- processes and counters ---------------------------------------------------------------

    def processes(self) -> list[processes.ProcessRow]:
        with self.jobqueue.transaction(read_only=True) as connection:
            return processes.all_processes(connection)

    def stats(self, *, minutes: int = 60, queues: Iterable[str] | None = None) -> Stats:
        """Outcomes over the last ``minutes`` whole minutes (plus the current one)."""
        if minutes < 1:
            raise ValueError("minutes must be at least 1")
        since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
        query = select(*(func.coalesce(func.sum(job_stats.c[k]), 0) for k in counters.STAT_KINDS))
        query = query.where(job_stats.c.minute > since)
        if queues is not None:
            query = query.where(job_stats.c.queue.in_(list(queues)))
        with self.jobqueue.transaction(read_only=True) as connection:
            row = connection.execute(query).one()
        succeeded, retried, failed, discarded = (int(value) for value in row)
        return Stats(minutes, succeeded, retried, failed, discarded)

    def throughput(self, *, minutes: int = 60) -> list[MinuteStats]:
        """One entry per minute for the last ``minutes`` minutes (the current one last), with
        zeros where nothing finished, so a chart has no gaps."""
        if minutes < 1:
            raise ValueError("minutes must be at least 1")
        current = datetime.now(UTC).replace(second=0, microsecond=0)
        since = current - timedelta(minutes=minutes)
        with self.jobqueue.transaction(read_only=True) as connection:
            counts = counters.per_minute(connection, since=since)
        empty = (0,) * len(counters.STAT_KINDS)
        minutes_shown = [current - timedelta(minutes=back) for back in range(minutes - 1, -1, -1)]
        return [MinuteStats(minute, *counts.get(minute, empty)) for minute in minutes_shown]

    def totals(self) -> dict[str, Stats]:
        """All outcomes ever counted, per queue; they survive pruning and never go down."""
        with self.jobqueue.transaction(read_only=True) as connection:
            by_queue = counters.totals_by_queue(connection)
        return {queue: Stats(0, *values) for queue, values in sorted(by_queue.items())}

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Jobs per (queue, status), succeeded excepted: succeeded rows are the bulk of the
        table and are pruned, so counting them costs a scan and means little; the totals of
        :meth:`totals` tell how many succeeded."""
        with self.jobqueue.transaction(read_only=True) as connection:
            rows = connection.execute(
                select(job_queue.c.queue, job_queue.c.status, func.count())
                .where(job_queue.c.status.in_([s for s in STATUSES if s != SUCCEEDED]))
                .group_by(job_queue.c.queue, job_queue.c.status)
            ).all()
        return {(queue, status): int(count) for queue, status, count in rows}
