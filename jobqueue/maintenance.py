"""Maintenance duties run by every supervisor: rescue the jobs of dead processes.

Rescue is safe to run from many supervisors at once: each state change is a fenced UPDATE, so
a job is rescued once, and a rescued job whose worker comes back cannot be overwritten by it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import Connection

from jobqueue import claims, counters, processes, semaphores
from jobqueue.execution import worker_lost_error
from jobqueue.processes import ProcessRow
from jobqueue.queue import JobQueue
from jobqueue.schema import FAILED

log = structlog.get_logger("jobqueue.maintenance")


def rescue(jobqueue: JobQueue, *, threshold_seconds: float | None) -> int:
    """Delete dead processes' rows, then return their jobs to pending (counting the attempt).

    ``threshold_seconds=None`` finds dead processes by pid only. Returns the number of jobs
    rescued.
    """
    with jobqueue.transaction() as connection:
        declare_dead(connection, threshold_seconds=threshold_seconds)
    return rescue_orphans(jobqueue)


def declare_dead(connection: Connection, *, threshold_seconds: float | None) -> list[ProcessRow]:
    """Delete the rows of dead processes (see ``processes.delete_dead``) and log each."""
    dead = processes.delete_dead(connection, threshold_seconds=threshold_seconds)
    for row in dead:
        log.warning(
            "process_declared_dead",
            process_id=row.id,
            kind=row.kind,
            hostname=row.hostname,
            pid=row.pid,
            last_heartbeat_at=row.last_heartbeat_at.isoformat(),
        )
    return dead


def rescue_orphans(jobqueue: JobQueue) -> int:
    """Rescue every running job whose process row no longer exists."""
    with jobqueue.transaction(read_only=True) as connection:
        orphans = claims.orphaned_jobs(connection)
    rescued = 0
    for job in orphans:
        now = datetime.now(UTC)
        with jobqueue.transaction() as connection:
            status = claims.rescue_job(connection, job, error=worker_lost_error(job), now=now)
            if status == FAILED and job.concurrency_key is not None:
                semaphores.release_slots(connection, [job.concurrency_key])
            if status is not None:
                kind = "failed" if status == FAILED else "retried"
                counters.bump_stats(
                    connection, shard=job.claimed_by, now=now, counts={job.queue: {kind: 1}}
                )
        if status is None:
            continue
        rescued += 1
        log.warning(
            "job_rescued",
            job_id=job.id,
            job_name=job.name,
            queue=job.queue,
            attempt=job.attempts,
            process_id=job.claimed_by,
            status=status,
            final=status == FAILED,
        )
    return rescued
