"""The claim as workers make it: :func:`~jobqueue.store.claims.claim_jobs`, and in the same
transaction the end of the jobs it found past their ``expires_at``.

An expired job is never run late; its end is an outcome like any other: it is counted
(``expired`` in the outcome counters) and carried to its batch and its dependents
(:mod:`~jobqueue.store.workflow`), where it counts as cancelled. It took no concurrency slot
(the gate charges a key only for the jobs that start), but gives back the one it kept if it
slept between its steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from jobqueue.schema import EXPIRED
from jobqueue.store import counters, workflow
from jobqueue.store.claimed import ClaimedJob
from jobqueue.store.claims import claim_jobs
from jobqueue.store.dependencies import Ended
from jobqueue.store.semaphores import release_slots


class Claimed(NamedTuple):
    """What a claim took: the jobs to run, and the jobs it ended as expired instead."""

    jobs: list[ClaimedJob]
    expired: list[ClaimedJob]


def claim_due(
    connection: Connection,
    *,
    process_id: str,
    queues: Sequence[str] | None,
    limit: int,
    now: datetime,
) -> Claimed:
    """Claim up to ``limit`` due jobs (see :func:`~jobqueue.store.claims.claim_jobs`); the
    expired among them are ended here, in the caller's transaction."""
    taken = claim_jobs(connection, process_id=process_id, queues=queues, limit=limit, now=now)
    expired = [job for job in taken if job.status == EXPIRED]
    if not expired:
        return Claimed(taken, [])
    end_expired(connection, expired, process_id=process_id, now=now)
    return Claimed([job for job in taken if job.status != EXPIRED], expired)


def end_expired(
    connection: Connection, jobs: Sequence[ClaimedJob], *, process_id: str, now: datetime
) -> None:
    """Carry the end of jobs that expired (their rows already say so) on: the slot of one that
    slept holding it, counters, batches and dependents."""
    keys = [job.concurrency_key for job in jobs if job.held_slot and job.concurrency_key]
    if keys:
        release_slots(connection, keys)
    counters.bump_outcomes(
        connection, shard=process_id, now=now, outcomes=[(job.queue, EXPIRED) for job in jobs]
    )
    workflow.finish(
        connection, [Ended(job.id, EXPIRED, job.batch_id, job.callback_of) for job in jobs], now
    )
