"""Claiming: take due jobs for a worker (the reads between claims, when the next job is due
and how many run, are in :mod:`jobqueue.store.due`). The fenced changes of a claimed job are
in :mod:`jobqueue.store.attempts`; :mod:`jobqueue.store.claiming` ends the expired ones.

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
    case,
    exists,
    select,
    update,
)
from sqlalchemy.sql.elements import BindParameter

from jobqueue.schema import (
    EXPIRED,
    RUNNING,
    UTCDateTime,
    job_processes,
    job_queue,
    job_queue_pauses,
)
from jobqueue.store.dialect import is_mysql
from jobqueue.store.due import DUE_ORDER, due_condition


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
    #: The attempt whose start the database has recorded (see :attr:`started`).
    started_attempt: int | None = None
    #: The enqueuing code's trace context, for the attempt's span (see jobqueue.tracing).
    trace_context: str | None = None
    #: The batch the job is a member of, and the batch whose callback it is (its end moves
    #: their counts, see jobqueue.store.workflow).
    batch_id: str | None = None
    callback_of: str | None = None
    #: Not started by then, the job ends ``expired`` (a retry after it expires instead).
    expires_at: datetime | None = None
    #: ``running``, or ``expired`` when the claim found it too late (it is not to be run).
    status: str = RUNNING

    @property
    def fence(self) -> tuple[str, int]:
        """(id, attempts): with claimed_by and status='running', what every final write checks."""
        return (self.id, self.attempts)

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1 (what the logs call ``attempt``): ``attempts`` counts
        the claims so far, this one included."""
        return self.attempts

    @property
    def idempotency_key(self) -> str:
        """A key for calls to other services (a payment provider's ``Idempotency-Key``, a
        unique column in your table): the same on every attempt of this job, rescues
        included, and different for every job, so a repeated attempt repeats nothing."""
        return f"jobqueue-{self.id}"

    @property
    def started(self) -> bool:
        """Whether the database knows this attempt's job body started: only then does its
        interruption count as a failed attempt (a prefetched job never run does not)."""
        return self.started_attempt == self.attempts

    @property
    def must_record_start(self) -> bool:
        """Whether this attempt's start must be written before its body runs.

        Starts are recorded lazily (batched, once an attempt has run a while), so a job that
        kills its worker at once would be rescued uncounted, again and again. A job that has
        had an uncounted claim before (rescued unstarted, released, snoozed) therefore has
        its start written first: it runs at most once without being counted.
        """
        return self.attempts - 1 > self.failed_attempts

    @property
    def is_last_attempt(self) -> bool:
        """Whether a failure of this attempt uses up the job's attempts (the give-up rule)."""
        return self.failed_attempts + 1 >= self.max_attempts

    @property
    def log_fields(self) -> dict[str, object]:
        """What every log event about this attempt carries."""
        return {
            "job_id": self.id,
            "job_name": self.name,
            "queue": self.queue,
            "attempt": self.attempts,
        }


CLAIM_COLUMNS = (
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
    job_queue.c.started_attempt,
    job_queue.c.trace_context,
    job_queue.c.batch_id,
    job_queue.c.callback_of,
    job_queue.c.expires_at,
    job_queue.c.status,
)


# Statements on the hot path are built once with bound parameters, so SQLAlchemy compiles
# each only once per dialect and a claim or completion costs just its round trip.
_P_PROCESS = bindparam("process_id", type_=String())
_P_NOW = bindparam("now", type_=UTCDateTime())
_P_LIMIT = bindparam("limit", type_=Integer())
_P_QUEUE = bindparam("claim_queue", type_=String())  # not a column name: it would SET it
_P_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_P_PAUSED: BindParameter[Any] = bindparam("paused", expanding=True)
# A job past its expires_at is ended as expired by the claim that finds it, never run late.
_TOO_LATE = job_queue.c.expires_at <= _P_NOW  # NULL (no expiry) is not true
_CLAIM_VALUES = {
    "status": case((_TOO_LATE, EXPIRED), else_=RUNNING),
    "claimed_by": _P_PROCESS,
    "attempts": job_queue.c.attempts + 1,
    "started_at": _P_NOW,
    "finished_at": case((_TOO_LATE, _P_NOW), else_=None),
    "unique_key": case((_TOO_LATE, None), else_=job_queue.c.unique_key),
}


@functools.cache
def _claim_statements(dialect: str, by_queue: bool, skip_paused: bool) -> tuple[Any, ...]:
    # A process that was declared dead (its row deleted) claims nothing, even before its next
    # heartbeat tells it so.
    registered = exists().where(job_processes.c.id == _P_PROCESS)
    # The due predicate and order are :mod:`jobqueue.store.due`'s, shared with the read-only
    # JobQueue.due_jobs(), so what it lists is exactly what a claim would take.
    due = select(job_queue.c.id).where(*due_condition(dialect, _P_NOW), registered)
    if by_queue:
        due = due.where(job_queue.c.queue == _P_QUEUE)
    if skip_paused:
        # The paused queues are read first and passed as a list: a NOT EXISTS against the
        # pauses table made PostgreSQL expect almost no rows and sort every due job on each
        # claim (5x slower with a million finished rows) instead of walking the claim index.
        due = due.where(job_queue.c.queue.not_in(_P_PAUSED))
    due = due.order_by(*DUE_ORDER)
    due = due.limit(_P_LIMIT)
    if is_mysql(dialect):
        # MySQL has no UPDATE ... RETURNING and no LIMIT inside IN (subquery).
        return (
            due.with_for_update(skip_locked=True),
            update(job_queue).where(job_queue.c.id.in_(_P_IDS)).values(**_CLAIM_VALUES),
            select(*CLAIM_COLUMNS).where(job_queue.c.id.in_(_P_IDS)),
        )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        update(job_queue)
        .where(job_queue.c.id.in_(due))
        .values(**_CLAIM_VALUES)
        .returning(*CLAIM_COLUMNS),
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

    A job found past its ``expires_at`` is marked ``expired`` instead and returned with that
    status, not to be run: :func:`jobqueue.store.claiming.claim_due` carries its end on.

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
