"""What to enqueue and what enqueue returns: :class:`JobCall` and :class:`EnqueuedJob`
(:mod:`jobqueue.call_builder` is the one place a job's options and a call's arguments become
a call).

A :class:`JobCall` is a validated, not yet written job; :meth:`JobQueue.enqueue_many
<jobqueue.queue.JobQueue.enqueue_many>` writes any number of them in one transaction. Every
enqueue path goes through it, so single and bulk enqueue validate alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from jobqueue.database import Database
from jobqueue.errors import (
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    NaiveDatetimeError,
)
from jobqueue.options import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    JobOptions,
    dependency_ids,
    validate_dependency_failure,
    validate_max_attempts,
    validate_name,
    validate_priority,
    validate_queue_name,
)
from jobqueue.rate_limits import check_cost, check_key, windows_text
from jobqueue.registry import registry
from jobqueue.schema import CANCELLED, EXPIRED, FAILED, SUCCEEDED
from jobqueue.serialization import decode_value
from jobqueue.store.jobs import JobRecord, fetch_job

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, scoped_session

    #: An ORM session to enqueue in: a ``Session``, or a ``scoped_session`` (Flask-SQLAlchemy's
    #: ``db.session``).
    AnySession: TypeAlias = Session | scoped_session[Any]


def check_arguments(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Where the job's code is imported, refuse arguments that do not fit its signature
    (:class:`~jobqueue.errors.JobArgumentsError`, a ``TypeError``) before anything is
    written: a worker could only fail such a job. A producer without the code enqueues by
    name unchecked, and the worker then fails the job at once."""
    definition = registry.find(name)
    if definition is not None:
        definition.check_arguments(args, kwargs)


def require_aware(when: datetime) -> datetime:
    if not isinstance(when, datetime):
        raise TypeError(f"expected a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{when!r} has no timezone; pass an aware datetime such as "
            "datetime(2027, 1, 1, tzinfo=UTC) so the instant is unambiguous"
        )
    return when.astimezone(UTC)


@dataclass(frozen=True)
class JobCall:
    """One job to enqueue: the job's name, its arguments and where and when it runs.

    ``scheduled_for=None`` means "as soon as a worker is free". Build one with
    ``my_job.call(...)``, ``my_job.using(...).call(...)``, or directly by name for a producer that
    does not import the job's code: ``JobCall("billing.charge", args=(42,), queue="billing")``.
    """

    name: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    scheduled_for: datetime | None = None
    #: While an unfinished job (pending, blocked or running) has this key, enqueue returns it.
    unique_key: str | None = None
    #: At most ``concurrency_limit`` jobs with this key run at once; the rest wait as blocked.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    #: Job or batch ids that must finish first (the job waits as ``waiting`` until then).
    depends_on: tuple[str, ...] = ()
    #: What a dependency that did not succeed does: ``"cancel"`` this job (and, in turn, what
    #: depends on it) or ``"run"`` it anyway.
    on_dependency_failure: str = "cancel"
    #: Not started by then, the job ends ``expired`` instead of running late.
    expires_at: datetime | None = None
    #: Seconds of quiet (needs ``unique_key``): a queued job with the key takes this call's
    #: arguments and starts this long after it, instead of another job being written.
    debounce: float | None = None
    #: Starts of jobs with this key are limited by ``rate_limits`` (stored form,
    #: ``"count/seconds,..."``, see :mod:`jobqueue.rate_limits`); each costs ``rate_cost``.
    rate_key: str | None = None
    rate_limits: str | None = None
    rate_cost: int | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        validate_queue_name(self.queue)
        validate_priority(self.priority)
        validate_max_attempts(self.max_attempts)
        if not isinstance(self.args, list | tuple):
            raise TypeError(f"args must be a list or tuple, not {type(self.args).__name__}")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"kwargs must be a mapping, not {type(self.kwargs).__name__}")
        check_arguments(self.name, self.args, self.kwargs)
        if self.scheduled_for is not None:
            object.__setattr__(self, "scheduled_for", require_aware(self.scheduled_for))
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", require_aware(self.expires_at))
        if self.unique_key is not None and (
            not isinstance(self.unique_key, str) or not self.unique_key
        ):
            raise ValueError(f"unique_key must be a non-empty string, not {self.unique_key!r}")
        if self.debounce is not None:
            _check_debounce(self)
        if self.rate_key is not None or self.rate_limits is not None:
            _check_rate(self)
        if self.depends_on != ():  # checked only when given: this runs on every enqueue
            object.__setattr__(self, "depends_on", dependency_ids(self.depends_on))
        if self.on_dependency_failure != "cancel":
            validate_dependency_failure(self.on_dependency_failure)
        if (self.concurrency_key is None) != (self.concurrency_limit is None):
            raise ValueError("concurrency_key and concurrency_limit go together")
        if self.concurrency_key is not None and (
            not isinstance(self.concurrency_key, str) or not 0 < len(self.concurrency_key) <= 255
        ):
            raise ValueError(
                f"concurrency_key must be a string of 1 to 255 characters, "
                f"not {self.concurrency_key!r}"
            )


def plain_call(
    name: str, args: Sequence[Any], kwargs: Mapping[str, Any], options: JobOptions
) -> JobCall:
    """A :class:`JobCall` of arguments and a registered job's options only (no schedule, no
    keys, no dependencies), made without the dataclass's ``__init__``: a frozen dataclass of
    nineteen fields sets each through ``object.__setattr__``, then ``__post_init__`` checks
    options that were checked when the job was registered. That was 7 of the 8 us of building
    each of a batch's calls. The arguments are still checked against the job's signature.
    """
    if not isinstance(args, list | tuple) or not isinstance(kwargs, Mapping):
        return JobCall(name, args, kwargs)  # its error
    check_arguments(name, args, kwargs)
    call = object.__new__(JobCall)
    call.__dict__.update(_DEFAULTS)
    call.__dict__.update(
        name=name,
        args=args,
        kwargs=kwargs,
        queue=options.queue,
        priority=options.priority,
        max_attempts=options.max_attempts,
    )
    return call


#: Every field's default (the defaults are immutable: the empty kwargs is given per call).
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(JobCall) if f.default is not MISSING}


def _check_debounce(call: JobCall) -> None:
    seconds = call.debounce
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError(f"debounce must be a positive number of seconds, not {seconds!r}")
    if call.unique_key is None:
        raise ValueError("debounce needs a unique_key: the enqueues it collapses share it")
    if call.depends_on:
        raise ValueError("a debounced job cannot have depends_on (it may stand for many calls)")


def _check_rate(call: JobCall) -> None:
    if call.rate_key is None or call.rate_limits is None:
        raise ValueError("rate_key and rate_limits go together")
    check_key("rate_key", call.rate_key)
    windows_text(call.rate_limits.split(","))  # stored form: "count/seconds,..."
    if call.rate_cost is not None:
        check_cost(call.rate_cost, call.rate_limits)


@dataclass(frozen=True)
class EnqueuedJob:
    """What enqueue returns: the job's ULID and where it went."""

    id: str
    name: str
    queue: str
    scheduled_for: datetime
    #: The database it was written to (or, in inline mode, would have been).
    jobqueue: Database | None = field(default=None, repr=False, compare=False)
    #: True when a unique job with the same key was already queued and is returned instead.
    existing: bool = False
    #: In inline mode, (what the job returned,): it ran at enqueue and was never written.
    inline_result: tuple[Any] | None = field(default=None, repr=False, compare=False)

    def fetch(self) -> JobRecord | None:
        """Read the job's current row (``None`` once it was pruned or rolled back)."""
        if self.jobqueue is None:
            raise ValueError(
                f"job {self.id} has no database to read it from (it was enqueued through an "
                "async session): read it with JobQueue(<a sync URL>).get_job(its id)"
            )
        self.jobqueue.verify_schema()  # a missing schema says "run jobrunner migrate"
        with self.jobqueue.transaction(read_only=True) as connection:
            return fetch_job(connection, self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to end and return what it returned (None if it returned None).

        Raises :class:`~jobqueue.errors.JobFailedError` (with the error record) or
        :class:`~jobqueue.errors.JobCancelledError` or :class:`~jobqueue.errors.JobExpiredError`
        if it ended so, ``TimeoutError`` if it has
        not ended after ``timeout`` seconds, :class:`~jobqueue.errors.JobNotFoundError` if
        there is no such job. It polls the job's row, from every 20 ms up to every second.
        """
        if self.inline_result is not None:
            return self.inline_result[0]
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL
        while True:
            ended, value = self._ended(self.fetch())
            if ended:
                return value
            delay = _next_poll(delay, deadline, self, timeout)
            time.sleep(delay)

    async def aresult(self, timeout: float | None = None) -> Any:
        """:meth:`result` for ``async`` code: the reads run in a thread, the waits on the loop."""
        if self.inline_result is not None:
            return self.inline_result[0]
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL
        while True:
            ended, value = self._ended(await asyncio.to_thread(self.fetch))
            if ended:
                return value
            delay = _next_poll(delay, deadline, self, timeout)
            await asyncio.sleep(delay)

    def _ended(self, record: JobRecord | None) -> tuple[bool, Any]:
        """(whether the job has ended, its result); raises for failed and cancelled."""
        if record is None:
            raise JobNotFoundError(
                f"job {self.id} does not exist: its transaction rolled back, or it was pruned"
            )
        if record.status == SUCCEEDED:
            return True, decode_value(record.result) if record.result is not None else None
        if record.status == FAILED:
            error = record.error
            what = (
                (f"{error.type}: {error.message}" if error.message else error.type)
                if error is not None
                else "no error recorded"
            )
            raise JobFailedError(f"job {self.id} failed: {what}", job_id=self.id, error=error)
        if record.status == CANCELLED:
            raise JobCancelledError(f"job {self.id} was cancelled", job_id=self.id)
        if record.status == EXPIRED:
            raise JobExpiredError(
                f"job {self.id} expired: it had not started by {record.expires_at}", job_id=self.id
            )
        return False, None


_FIRST_POLL = 0.02
_LAST_POLL = 1.0


def _next_poll(
    delay: float, deadline: float | None, job: EnqueuedJob, timeout: float | None
) -> float:
    """The next wait of a result poll (growing to a second), or TimeoutError when none is left."""
    if deadline is None:
        return min(delay * 1.5, _LAST_POLL)
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"job {job.id} has not ended after {timeout:g} s")
    return min(delay * 1.5, _LAST_POLL, left)
