"""The fenced state changes of a claimed job: complete, fail or retry, release, rescue.

Every one is guarded by :data:`FENCE` (``(id, attempts)`` among the attempt's fences,
``claimed_by`` the process, ``status = 'running'``), so a stale worker can neither overwrite
the attempt that replaced it nor resurrect a finished job. Only an operator's retry moves a job
out of a terminal state, and that is not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, exists, or_, select, tuple_, update
from sqlalchemy.sql.elements import BindParameter

from jobqueue.schema import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    UTCDateTime,
    job_cancellations,
    job_processes,
    job_queue,
)
from jobqueue.store.claimed import CLAIM_COLUMNS, ClaimedJob
from jobqueue.store.dialect import is_mysql
from jobqueue.store.due import waiting_status
from jobqueue.store.history import record_failed_attempt
from jobqueue.store.semaphores import release_slots

_P_PROCESS = bindparam("process_id", type_=String())
_P_NOW = bindparam("now", type_=UTCDateTime())
_P_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_P_FENCES: BindParameter[Any] = bindparam("fences", expanding=True)

#: The guard of every change here; pass ``process_id`` and ``fences`` as parameters.
FENCE = (
    tuple_(job_queue.c.id, job_queue.c.attempts).in_(_P_FENCES),
    job_queue.c.claimed_by == _P_PROCESS,
    job_queue.c.status == RUNNING,
)


def fence_params(process_id: str, fences: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {"process_id": process_id, "fences": list(fences)}


_COMPLETE = (
    update(job_queue).where(*FENCE).values(status=SUCCEEDED, finished_at=_P_NOW, unique_key=None)
)
_COMPLETE_RETURNING = _COMPLETE.returning(job_queue.c.id, job_queue.c.has_dependents)
_LOCK_FENCED = select(job_queue.c.id).where(*FENCE).with_for_update()
_LOCK_FENCED_FLAGGED = (
    select(job_queue.c.id, job_queue.c.has_dependents).where(*FENCE).with_for_update()
)
_COMPLETE_IDS = (
    update(job_queue)
    .where(job_queue.c.id.in_(_P_IDS))
    .values(status=SUCCEEDED, finished_at=_P_NOW, unique_key=None)
)


def complete_jobs(
    connection: Connection,
    *,
    process_id: str,
    fences: Sequence[tuple[str, int]],
    now: datetime,
) -> dict[str, bool]:
    """Mark jobs succeeded, fenced; returns {id: whether jobs depend on it} for the jobs
    whose write took effect (read in the same statement where the backend returns rows).

    A job that was rescued (and perhaps re-claimed) since is left alone: a stale worker can
    never overwrite the attempt that replaced it, nor resurrect a finished job.
    """
    if not fences:
        return {}
    params = {**fence_params(process_id, fences), "now": now}
    if is_mysql(connection.dialect.name):
        # No RETURNING: lock the rows that pass the fence, then update exactly those.
        done = {row[0]: bool(row[1]) for row in connection.execute(_LOCK_FENCED_FLAGGED, params)}
        if done:
            connection.execute(_COMPLETE_IDS, {"ids": list(done), "now": now})
        return done
    return {row[0]: bool(row[1]) for row in connection.execute(_COMPLETE_RETURNING, params)}


_STORE_RESULT = (
    update(job_queue)
    .where(job_queue.c.id == bindparam("job_id", type_=String()))
    .values(result=bindparam("result_text", type_=job_queue.c.result.type))
)


def store_results(connection: Connection, results: Sequence[tuple[str, str]]) -> None:
    """Write succeeded jobs' results, ``(id, JSON text)``, in the transaction that completed
    them (so only jobs whose fenced completion took effect): one executemany, and nothing at
    all for the jobs that returned None."""
    if results:
        connection.execute(
            _STORE_RESULT, [{"job_id": job_id, "result_text": text} for job_id, text in results]
        )


def record_failure(
    connection: Connection,
    job: ClaimedJob,
    *,
    error: str,
    retry_at: datetime | None,
    final_status: str,
    now: datetime,
) -> bool:
    """Count a failed attempt: back to pending at ``retry_at``, or ``final_status`` if None.

    Fenced like every final write; returns False when the job was no longer ours.
    """
    if retry_at is not None:
        values: dict[str, Any] = {"status": waiting_status(), "scheduled_for": retry_at}
    else:
        values = {"status": final_status, "finished_at": now, "unique_key": None}
    return _count_failure(connection, job, values, error, now)


def snooze(connection: Connection, job: ClaimedJob, *, error: str, until: datetime) -> bool:
    """Put a job back to pending until ``until`` without counting a failed attempt (its name
    is unknown to this worker: not the job's failure). Fenced; False if no longer ours."""
    result = connection.execute(
        update(job_queue)
        .where(*FENCE)
        .values(status=waiting_status(), scheduled_for=until, last_error=error),
        fence_params(job.claimed_by, [job.fence]),
    )
    return bool(result.rowcount == 1)


def put_to_sleep(connection: Connection, job: ClaimedJob, *, until: datetime) -> bool:
    """Back to pending until ``until`` without counting an attempt or touching its error
    (``durable_sleep``). Fenced; False if the job was no longer ours.

    A sleeping job keeps its concurrency slot (a job between its steps is in progress, so two
    jobs of an exclusive key never interleave their steps): it waits as ``pending``, not
    ``blocked``, and the plain claim resumes it without asking its key again."""
    result = connection.execute(
        update(job_queue).where(*FENCE).values(status=PENDING, scheduled_for=until),
        fence_params(job.claimed_by, [job.fence]),
    )
    return bool(result.rowcount == 1)


def _count_failure(
    connection: Connection, job: ClaimedJob, values: dict[str, Any], error: str, now: datetime
) -> bool:
    """The one place a failed attempt is counted: on the row, and (when the fenced write took
    effect) in the attempt history, in the same transaction."""
    values["last_error"] = error
    values["failed_attempts"] = job_queue.c.failed_attempts + 1
    result = connection.execute(
        update(job_queue).where(*FENCE).values(**values),
        fence_params(job.claimed_by, [job.fence]),
    )
    if result.rowcount != 1:
        return False
    record_failed_attempt(
        connection,
        job_id=job.id,
        attempt=job.attempts,
        process_id=job.claimed_by,
        error=error,
        now=now,
    )
    return True


def release_jobs(
    connection: Connection, *, process_id: str, fences: Sequence[tuple[str, int]]
) -> set[str]:
    """Hand jobs back to pending (blocked, with a key) without counting a failed attempt
    (graceful shutdown, a job the worker holds but does not run), giving their concurrency
    slots back; returns the ids whose release took effect (the others were no longer this
    attempt's).

    ``scheduled_for`` is kept: the job was due, stays first in line, and still shows when it
    was meant to run (a recurring task's fire time, say)."""
    if not fences:
        return set()
    params = fence_params(process_id, fences)
    if is_mysql(connection.dialect.name):
        # No RETURNING: lock the rows that pass the fence, then update exactly those.
        ids = set(connection.execute(_LOCK_FENCED, params).scalars())
        if ids:
            connection.execute(_RELEASE_IDS, {"ids": list(ids)})
    else:
        ids = set(connection.execute(_RELEASE_RETURNING, params).scalars())
    if ids:  # out of running: their concurrency slots are given back
        keys = connection.execute(
            select(job_queue.c.concurrency_key).where(
                job_queue.c.id.in_(sorted(ids)), job_queue.c.concurrency_key.is_not(None)
            )
        ).scalars()
        release_slots(connection, list(keys))
    return ids


_RELEASE_RETURNING = (
    update(job_queue).where(*FENCE).values(status=waiting_status()).returning(job_queue.c.id)
)
_RELEASE_IDS = update(job_queue).where(job_queue.c.id.in_(_P_IDS)).values(status=waiting_status())


def held_jobs(connection: Connection, process_id: str) -> list[tuple[str, int]]:
    """(id, attempts) of the jobs the database says ``process_id`` is running."""
    rows = connection.execute(
        select(job_queue.c.id, job_queue.c.attempts).where(
            job_queue.c.claimed_by == process_id, job_queue.c.status == RUNNING
        )
    )
    return [(row.id, row.attempts) for row in rows]


def cancellation_requests(connection: Connection, job_ids: Sequence[str]) -> list[str]:
    """Which of these running jobs an operator asked to stop."""
    rows = connection.execute(
        select(job_cancellations.c.job_id).where(job_cancellations.c.job_id.in_(list(job_ids)))
    )
    return list(rows.scalars())


def orphaned_jobs(connection: Connection) -> list[ClaimedJob]:
    """Running jobs whose process row is gone: their worker died or was declared dead."""
    alive = exists().where(job_processes.c.id == job_queue.c.claimed_by)
    rows = connection.execute(
        select(*CLAIM_COLUMNS).where(job_queue.c.status == RUNNING, ~alive)
    ).mappings()
    return [ClaimedJob(**row) for row in rows]


def rescue_job(connection: Connection, job: ClaimedJob, *, error: str, now: datetime) -> str | None:
    """Return an orphaned job to pending, counting the interrupted attempt if it had started
    (so a job that kills its worker every time ends failed instead of looping) and going to
    failed when that used up its attempts. An attempt whose start was never recorded (a
    prefetched job, a claim the worker died right after) is handed back uncounted. Returns the
    new status, or None if the job had moved on meanwhile."""
    if not job.started:
        # Guarded on the start still being unrecorded: a mark that lands after the read is
        # left for the next pass, which then counts the attempt.
        result = connection.execute(
            update(job_queue)
            .where(*FENCE, _START_UNRECORDED)
            .values(status=waiting_status(), last_error=error),
            fence_params(job.claimed_by, [job.fence]),
        )
        return PENDING if result.rowcount == 1 else None
    if job.is_last_attempt:
        status, values = FAILED, {"status": FAILED, "finished_at": now, "unique_key": None}
    else:
        # scheduled_for is kept: it was due, so the rescued job is first in line.
        status, values = PENDING, {"status": waiting_status()}
    return status if _count_failure(connection, job, values, error, now) else None


_START_UNRECORDED = or_(
    job_queue.c.started_attempt.is_(None), job_queue.c.started_attempt != job_queue.c.attempts
)
_MARK_STARTED = update(job_queue).where(*FENCE).values(started_attempt=job_queue.c.attempts)


def mark_started(
    connection: Connection, *, process_id: str, fences: Sequence[tuple[str, int]]
) -> int:
    """Record that these attempts' job bodies started; returns how many rows took it (an
    attempt that has ended or moved on meanwhile is left alone)."""
    if not fences:
        return 0
    result = connection.execute(_MARK_STARTED, fence_params(process_id, fences))
    return int(result.rowcount)
