"""Profile B bound to jobqueue's ownership: the claim, the fence every final write checks
(:data:`jobqueue.store.attempts.FENCE`), the heartbeat, and the supervisor's rescue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from due_work_harness import FencedOwnership

from jobqueue.calls import JobCall
from jobqueue.queue import JobQueue
from jobqueue.runtime import maintenance
from jobqueue.schema import FAILED, RUNNING
from jobqueue.settings import DEFAULT_DEAD_THRESHOLD
from jobqueue.store import attempts, processes
from jobqueue.testing._owners import Owners, token

PROBE_JOB = "jobqueue.due_work.probe"


@contextmanager
def ownership(jobqueue: JobQueue, *, queue: str = "due-work-ownership") -> Iterator[Any]:
    """Longer than usual because it is one binding: every field below is a closure over the
    same owners, and splitting them would only scatter what one reviewer reads at once."""
    owners = Owners(jobqueue)

    def make_claimable() -> str:
        # ARRANGE: one due job on the probe queue, through the public enqueue.
        return jobqueue.enqueue_many([JobCall(PROBE_JOB, queue=queue)])[0].id

    def claim() -> tuple[str, UUID] | None:
        # REAL PRODUCTION: claims.claim_jobs, as a registered worker (a stand-in's pid).
        taken = owners.claim([queue], 1)
        return (taken[0].id, token(taken[0])) if taken else None

    def fenced(write: str) -> Any:
        def run(job_id: str, token: UUID) -> bool:
            job = owners.claims[token]
            now = datetime.now(UTC)
            with jobqueue.transaction() as connection:
                if write == "complete":
                    return job_id in attempts.complete_jobs(
                        connection, process_id=job.claimed_by, fences=[job.fence], now=now
                    )
                if write == "release":
                    return job_id in attempts.release_jobs(
                        connection, process_id=job.claimed_by, fences=[job.fence]
                    )
                retry_at = now if write == "retry" else None
                return attempts.record_failure(
                    connection, job, error="probe", retry_at=retry_at, final_status=FAILED, now=now
                )

        return run

    def renew(job_id: str, token: UUID) -> bool:
        # REAL PRODUCTION: the heartbeat; the lease is this attempt's only while it holds it.
        job = owners.claims[token]
        with jobqueue.transaction() as connection:
            alive = processes.heartbeat(connection, job.claimed_by)
            held = job.fence in attempts.held_jobs(connection, job.claimed_by)
        return alive and held

    def expire(job_id: str) -> None:
        # EXTERNAL SEAM: the owner's process is killed, as kill -9 would: its pid is gone.
        row = jobqueue.get_job(job_id)
        owners.kill_owner_of(row.claimed_by if row is not None else None)

    def reclaim(job_id: str) -> str | None:
        # REAL PRODUCTION: the supervisor's maintenance: declare the dead dead, rescue.
        before = jobqueue.get_job(job_id)
        maintenance.rescue(jobqueue, threshold_seconds=DEFAULT_DEAD_THRESHOLD)
        after = jobqueue.get_job(job_id)
        moved = before is not None and after is not None and after.status != RUNNING
        return after.status if moved and after is not None else None

    def observe(job_id: str) -> Any:
        # OBSERVE: the row's state and its owner's heartbeat (the lease's deadline).
        row = jobqueue.get_job(job_id)
        beats = {p.id: p.last_heartbeat_at for p in jobqueue.admin.processes()}
        if row is None:
            return None
        return row.status, row.claimed_by, row.attempts, beats.get(row.claimed_by or "")

    try:
        yield FencedOwnership(
            name=f"jobqueue claims on {queue!r}",
            make_claimable=make_claimable,
            claim=claim,
            fenced_write=fenced("complete"),
            other_fenced_writes={"retry": fenced("retry"), "fail": fenced("fail")},
            renew_lease=renew,
            expire_lease=expire,
            reclaim_stalled=reclaim,
            release_unchanged=fenced("release"),
            observe=observe,
        )
    finally:
        owners.close()
