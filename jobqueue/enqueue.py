"""Turning calls into rows: :class:`JobCall`, the ``using(...)`` builder and the handle returned.

A :class:`JobCall` is a validated, not yet written job; :meth:`JobQueue.enqueue_many
<jobqueue.queue.JobQueue.enqueue_many>` writes any number of them in one transaction. Every
enqueue path goes through it, so single and bulk enqueue validate alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from jobqueue.errors import NaiveDatetimeError
from jobqueue.registry import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    JobOptions,
    registry,
    validate_max_attempts,
    validate_name,
    validate_priority,
    validate_queue_name,
)
from jobqueue.serialization import canonical_digest

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from jobqueue.queue import JobQueue
    from jobqueue.store import JobRecord


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
    #: While a job with this key is pending, blocked or running, enqueue returns that job.
    unique_key: str | None = None
    #: At most ``concurrency_limit`` jobs with this key run at once; the rest wait as blocked.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        validate_queue_name(self.queue)
        validate_priority(self.priority)
        validate_max_attempts(self.max_attempts)
        if not isinstance(self.args, list | tuple):
            raise TypeError(f"args must be a list or tuple, not {type(self.args).__name__}")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"kwargs must be a mapping, not {type(self.kwargs).__name__}")
        if self.scheduled_for is not None:
            object.__setattr__(self, "scheduled_for", require_aware(self.scheduled_for))
        if self.unique_key is not None and (
            not isinstance(self.unique_key, str) or not self.unique_key
        ):
            raise ValueError(f"unique_key must be a non-empty string, not {self.unique_key!r}")
        if (self.concurrency_key is None) != (self.concurrency_limit is None):
            raise ValueError("concurrency_key and concurrency_limit go together")
        if self.concurrency_key is not None and (
            not isinstance(self.concurrency_key, str) or not 0 < len(self.concurrency_key) <= 255
        ):
            raise ValueError(
                f"concurrency_key must be a string of 1 to 255 characters, "
                f"not {self.concurrency_key!r}"
            )


@dataclass(frozen=True)
class EnqueuedJob:
    """What enqueue returns: the job's ULID and where it went."""

    id: str
    name: str
    queue: str
    scheduled_for: datetime
    jobqueue: JobQueue | None = field(default=None, repr=False, compare=False)
    #: True when a unique job with the same key was already queued and is returned instead.
    existing: bool = False

    def fetch(self) -> JobRecord | None:
        """Read the job's current row (``None`` once it was pruned or rolled back)."""
        from jobqueue.queue import get_default_queue

        return (self.jobqueue or get_default_queue()).get_job(self.id)


class Enqueuer:
    """Enqueues one job name with options fixed by ``using(...)``; immutable, so safe to share.

    ``connection=`` or ``session=`` writes the job inside the caller's transaction (it commits or
    rolls back with the business data that caused it); ``jobqueue=`` picks the database, else the
    default :class:`~jobqueue.queue.JobQueue` is used.
    """

    __slots__ = ("_connection", "_jobqueue", "_name", "_options", "_session", "_unique_key")

    def __init__(
        self,
        name: str,
        options: JobOptions,
        *,
        jobqueue: JobQueue | None = None,
        connection: Connection | None = None,
        session: Session | None = None,
        unique_key: str | None = None,
    ) -> None:
        if connection is not None and session is not None:
            raise ValueError("pass connection= or session=, not both")
        self._unique_key = unique_key
        self._name = name
        self._options = options
        self._jobqueue = jobqueue
        self._connection = connection
        self._session = session

    def using(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        jobqueue: JobQueue | None = None,
        connection: Connection | None = None,
        session: Session | None = None,
        unique_key: str | None = None,
    ) -> Enqueuer:
        """A copy with the given options replaced."""
        return Enqueuer(
            self._name,
            self._options.merged(queue=queue, priority=priority, max_attempts=max_attempts),
            jobqueue=jobqueue or self._jobqueue,
            connection=connection or self._connection,
            session=session or self._session,
            unique_key=unique_key or self._unique_key,
        )

    def call(self, *args: Any, **kwargs: Any) -> JobCall:
        """A :class:`JobCall` to pass to ``enqueue_many``."""
        return self._call(None, args, kwargs)

    def enqueue(self, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Run as soon as a worker is free."""
        return self._write(self._call(None, args, kwargs))

    def enqueue_in(self, delay: timedelta, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Run after ``delay`` (a ``timedelta``) has passed."""
        if not isinstance(delay, timedelta):
            raise TypeError(f"enqueue_in() takes a timedelta first, not {type(delay).__name__}")
        return self._write(self._call(datetime.now(UTC) + delay, args, kwargs))

    def enqueue_at(self, when: datetime, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Run at ``when``, an aware datetime (a naive one is refused)."""
        return self._write(self._call(require_aware(when), args, kwargs))

    def enqueue_many(self, calls: Sequence[JobCall]) -> list[EnqueuedJob]:
        """Write ``calls`` in one transaction, to this enqueuer's database or transaction."""
        return self._destination().enqueue_many(
            calls, connection=self._connection, session=self._session
        )

    def _call(
        self, scheduled_for: datetime | None, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> JobCall:
        unique_key = self._unique_key
        if unique_key is None and self._options.unique:
            unique_key = canonical_digest([self._name, list(args), dict(kwargs)])
        limit = self._options.concurrency_limit
        concurrency_key: str | None = None
        if limit is not None:
            key = self._options.concurrency_key
            concurrency_key = key(*args, **kwargs) if callable(key) else (key or self._name)
        return JobCall(
            name=self._name,
            args=args,
            kwargs=kwargs,
            queue=self._options.queue,
            priority=self._options.priority,
            max_attempts=self._options.max_attempts,
            scheduled_for=scheduled_for,
            unique_key=unique_key,
            concurrency_key=concurrency_key,
            concurrency_limit=limit,
        )

    def _destination(self) -> JobQueue:
        from jobqueue.queue import get_default_queue

        return self._jobqueue or get_default_queue()

    def _write(self, call: JobCall) -> EnqueuedJob:
        return self.enqueue_many([call])[0]


def by_name(
    name: str,
    *,
    queue: str | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
) -> Enqueuer:
    """An enqueuer for a job this process may not import: options come from the registry if
    the name is registered here, else from the arguments and the defaults."""
    validate_name(name)
    definition = registry.find(name)
    base = definition.options if definition is not None else JobOptions()
    return Enqueuer(name, base.merged(queue=queue, priority=priority, max_attempts=max_attempts))
