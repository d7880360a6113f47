"""The worker's SQL: claim due jobs, and every fenced state change of a claimed job (complete,
fail or retry, release, rescue).

Every final write is guarded by ``status = 'running' AND claimed_by AND (id, attempts)``, so a
stale worker can neither overwrite the attempt that replaced it nor resurrect a finished job.
The hot-path statements are built once with bound parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import BindParameter

from jobqueue.schema import (
    PENDING,
    RUNNING,
    SUCCEEDED,
    UTCDateTime,
    job_cancellations,
    job_processes,
    job_queue,
    job_queue_pauses,
)


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: what it needs to run it and to fence its final write."""

    id: str
    name: str
    args_json: str
    queue: str
    priority: int
    scheduled_for: datetime
    attempts: int
    failed_attempts: int
    max_attempts: int
    claimed_by: str
    concurrency_key: str | None = None

    @property
    def fence(self) -> tuple[str, int]:
        """(id, attempts): with claimed_by and status='running', what every final write checks."""
        return (self.id, self.attempts)


_CLAIM_COLUMNS = (
    job_queue.c.id,
    job_queue.c.name,
    job_queue.c.args.label("args_json"),
    job_queue.c.queue,
    job_queue.c.priority,
    job_queue.c.scheduled_for,
    job_queue.c.attempts,
    job_queue.c.failed_attempts,
    job_queue.c.max_attempts,
    job_queue.c.claimed_by,
    job_queue.c.concurrency_key,
)


# Statements on the hot path are built once with bound parameters, so SQLAlchemy compiles
# each only once per dialect and a claim or completion costs just its round trip.
_P_PROCESS = bindparam("process_id", type_=String())
_P_NOW = bindparam("now", type_=UTCDateTime())
_P_LIMIT = bindparam("limit", type_=Integer())
_P_QUEUE = bindparam("claim_queue", type_=String())  # not a column name: it would SET it
_P_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_P_FENCES: BindParameter[Any] = bindparam("fences", expanding=True)
_P_PAUSED: BindParameter[Any] = bindparam("paused", expanding=True)
_FENCED = (
    tuple_(job_queue.c.id, job_queue.c.attempts).in_(_P_FENCES),
    job_queue.c.claimed_by == _P_PROCESS,
    job_queue.c.status == RUNNING,
)
_CLAIM_VALUES = {
    "status": RUNNING,
    "claimed_by": _P_PROCESS,
    "attempts": job_queue.c.attempts + 1,
    "started_at": _P_NOW,
    "finished_at": None,
}


@functools.cache
def _claim_statements(dialect: str, by_queue: bool, skip_paused: bool) -> tuple[Any, ...]:
    # A process that was declared dead (its row deleted) claims nothing, even before its next
    # heartbeat tells it so.
    registered = exists().where(job_processes.c.id == _P_PROCESS)
    scheduled_for: Any = job_queue.c.scheduled_for
    if dialect == "sqlite":
        # SQLite's planner (no statistics) would rather range-scan (status, scheduled_for)
        # and sort every due row on each claim; "+column" rules that index out, leaving the
        # one that yields rows already in ORDER BY order, so a claim reads only LIMIT rows.
        scheduled_for = literal_column("+job_queue.scheduled_for", UTCDateTime())
    due = select(job_queue.c.id).where(
        job_queue.c.status == PENDING, scheduled_for <= _P_NOW, registered
    )
    if by_queue:
        due = due.where(job_queue.c.queue == _P_QUEUE)
    if skip_paused:
        # The paused queues are read first and passed as a list: a NOT EXISTS against the
        # pauses table made PostgreSQL expect almost no rows and sort every due job on each
        # claim (5x slower with a million finished rows) instead of walking the claim index.
        due = due.where(job_queue.c.queue.not_in(_P_PAUSED))
    due = due.order_by(job_queue.c.priority, job_queue.c.scheduled_for, job_queue.c.id)
    due = due.limit(_P_LIMIT)
    if dialect in ("mysql", "mariadb"):
        # MySQL has no UPDATE ... RETURNING and no LIMIT inside IN (subquery).
        return (
            due.with_for_update(skip_locked=True),
            update(job_queue).where(job_queue.c.id.in_(_P_IDS)).values(**_CLAIM_VALUES),
            select(*_CLAIM_COLUMNS).where(job_queue.c.id.in_(_P_IDS)),
        )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        update(job_queue)
        .where(job_queue.c.id.in_(due))
        .values(**_CLAIM_VALUES)
        .returning(*_CLAIM_COLUMNS),
    )


def claim_jobs(
    connection: Connection,
    *,
    process_id: str,
    queues: Sequence[str] | None,
    limit: int,
    now: datetime,
) -> list[ClaimedJob]:
    """Mark up to ``limit`` due jobs running for ``process_id`` and return them in run order.

    One query per queue in the listed order (an ORDER BY over a queue list cannot use an
    index); ``queues=None`` claims from every queue. Call inside a write transaction: on
    SQLite that is BEGIN IMMEDIATE (one writer), elsewhere rows are taken with SKIP LOCKED, so
    no job is ever handed to two workers.
    """
    paused = list(connection.execute(_PAUSED).scalars())
    claimed: list[ClaimedJob] = []
    for queue in queues if queues is not None else [None]:
        wanted = limit - len(claimed)
        if wanted <= 0:
            break
        if queue is not None and queue in paused:
            continue
        claimed.extend(_claim_from(connection, process_id, queue, wanted, now, paused))
    return claimed


_PAUSED = select(job_queue_pauses.c.queue)


def _claim_from(
    connection: Connection,
    process_id: str,
    queue: str | None,
    limit: int,
    now: datetime,
    paused: list[str],
) -> list[ClaimedJob]:
    skip_paused = queue is None and bool(paused)
    statements = _claim_statements(connection.dialect.name, queue is not None, skip_paused)
    params: dict[str, Any] = {
        "process_id": process_id,
        "now": now,
        "limit": limit,
        "claim_queue": queue,
    }
    if skip_paused:
        params["paused"] = paused
    if len(statements) == 3:
        select_due, mark, fetch = statements
        ids = connection.execute(select_due, params).scalars().all()
        if not ids:
            return []
        connection.execute(mark, {**params, "ids": ids})
        rows = connection.execute(fetch, {"ids": ids})
    else:
        rows = connection.execute(statements[0], params)
    jobs = [ClaimedJob(**row) for row in rows.mappings()]
    jobs.sort(key=lambda job: (job.priority, job.scheduled_for, job.id))
    return jobs


def next_due_at(connection: Connection, queues: Sequence[str] | None) -> datetime | None:
    """When the earliest pending job of these (unpaused) queues is due, or None.

    An ``ORDER BY scheduled_for LIMIT 1`` walk of the (status, scheduled_for) or (queue,
    status, scheduled_for) index: it reads one entry, where a MIN() with a correlated pause
    filter would read every pending row.
    """
    paused = set(connection.execute(select(job_queue_pauses.c.queue)).scalars())
    earliest = (
        select(job_queue.c.scheduled_for)
        .where(job_queue.c.status == PENDING)
        .order_by(job_queue.c.scheduled_for)
        .limit(1)
    )
    if queues is None:
        if paused:
            earliest = earliest.where(job_queue.c.queue.not_in(paused))
        return connection.execute(earliest).scalar()
    times = [
        connection.execute(earliest.where(job_queue.c.queue == queue)).scalar()
        for queue in queues
        if queue not in paused
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _fenced(process_id: str, fences: Sequence[tuple[str, int]]) -> list[Any]:
    return [
        tuple_(job_queue.c.id, job_queue.c.attempts).in_(list(fences)),
        job_queue.c.claimed_by == process_id,
        job_queue.c.status == RUNNING,
    ]


_COMPLETE = (
    update(job_queue).where(*_FENCED).values(status=SUCCEEDED, finished_at=_P_NOW, unique_key=None)
)
_COMPLETE_RETURNING = _COMPLETE.returning(job_queue.c.id)
_LOCK_FENCED = select(job_queue.c.id).where(*_FENCED).with_for_update()
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
) -> set[str]:
    """Mark jobs succeeded, fenced; returns the ids whose write took effect.

    A job that was rescued (and perhaps re-claimed) since is left alone: a stale worker can
    never overwrite the attempt that replaced it, nor resurrect a finished job.
    """
    if not fences:
        return set()
    params = {"process_id": process_id, "fences": list(fences), "now": now}
    if connection.dialect.name in ("mysql", "mariadb"):
        # No RETURNING: lock the rows that pass the fence, then update exactly those.
        ids = set(connection.execute(_LOCK_FENCED, params).scalars())
        if ids:
            connection.execute(_COMPLETE_IDS, {"ids": list(ids), "now": now})
        return ids
    return set(connection.execute(_COMPLETE_RETURNING, params).scalars())


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
        values: dict[str, Any] = {"status": PENDING, "scheduled_for": retry_at}
    else:
        values = {"status": final_status, "finished_at": now, "unique_key": None}
    values["last_error"] = error
    values["failed_attempts"] = job_queue.c.failed_attempts + 1
    result = connection.execute(
        update(job_queue).where(*_fenced(job.claimed_by, [job.fence])).values(**values)
    )
    return bool(result.rowcount == 1)


def release_jobs(
    connection: Connection, *, process_id: str, fences: Sequence[tuple[str, int]], now: datetime
) -> int:
    """Hand jobs back to pending without counting a failed attempt (graceful shutdown).

    ``scheduled_for`` is kept: the job was due, stays first in line, and still shows when it
    was meant to run (a recurring task's fire time, say)."""
    if not fences:
        return 0
    result = connection.execute(
        update(job_queue).where(*_fenced(process_id, fences)).values(status=PENDING)
    )
    return int(result.rowcount)


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
        select(*_CLAIM_COLUMNS).where(job_queue.c.status == RUNNING, ~alive)
    ).mappings()
    return [ClaimedJob(**row) for row in rows]


def rescue_job(connection: Connection, job: ClaimedJob, *, error: str, now: datetime) -> str | None:
    """Return an orphaned job to pending (or to failed when its attempts are used up), counting
    the interrupted attempt so that a job that kills its worker every time ends failed instead of
    looping. Returns the new status, or None if the job had moved on meanwhile."""
    exhausted = job.failed_attempts + 1 >= job.max_attempts
    status = "failed" if exhausted else PENDING
    values: dict[str, Any] = {"status": status, "last_error": error}
    if exhausted:
        values.update(finished_at=now, unique_key=None)
    # Otherwise scheduled_for is kept: it was due, so the rescued job is first in line.
    values["failed_attempts"] = job_queue.c.failed_attempts + 1
    result = connection.execute(
        update(job_queue).where(*_fenced(job.claimed_by, [job.fence])).values(**values)
    )
    return status if result.rowcount == 1 else None


def running_count(connection: Connection, queues: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(job_queue).where(job_queue.c.status == RUNNING)
    if queues is not None:
        query = query.where(job_queue.c.queue.in_(list(queues)))
    return int(connection.execute(query).scalar_one())
