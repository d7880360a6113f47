"""A claimed job (:class:`ClaimedJob`) and what every claim writes and reads back: the columns,
the values that mark a job running (or expired, when the claim finds it past its deadline),
and the bound parameters the claim statements share (:mod:`jobqueue.store.claims`,
:mod:`jobqueue.store.gate`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, case
from sqlalchemy.sql.elements import BindParameter

from jobqueue.schema import EXPIRED, RUNNING, UTCDateTime, job_queue


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
    #: Whether it held its concurrency slot before this claim (it slept between its steps),
    #: rather than taking one now: an end at the claim (expired) gives that slot back.
    held_slot: bool = False

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
P_PROCESS = bindparam("process_id", type_=String())
P_NOW = bindparam("now", type_=UTCDateTime())
P_LIMIT = bindparam("limit", type_=Integer())
P_QUEUE = bindparam("claim_queue", type_=String())  # not a column name: it would SET it
P_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
P_PAUSED: BindParameter[Any] = bindparam("paused", expanding=True)
# A job past its expires_at is ended as expired by the claim that finds it, never run late.
TOO_LATE = job_queue.c.expires_at <= P_NOW  # NULL (no expiry) is not true
CLAIM_VALUES = {
    "status": case((TOO_LATE, EXPIRED), else_=RUNNING),
    "claimed_by": P_PROCESS,
    "attempts": job_queue.c.attempts + 1,
    "started_at": P_NOW,
    "finished_at": case((TOO_LATE, P_NOW), else_=None),
    "unique_key": case((TOO_LATE, None), else_=job_queue.c.unique_key),
}
