"""The :class:`Enqueuer`: one job name with its options and destination, and the enqueue
calls that ``@job`` functions, ``Job`` classes and :func:`by_name` all hand over to it.

The per-call options of ``using(...)`` are listed once, in :class:`UsingArgs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypedDict, Unpack

from sqlalchemy import Connection, Engine

from jobqueue.call_builder import build_call, target_options
from jobqueue.calls import EnqueuedJob, JobCall, require_aware
from jobqueue.options import (
    JobOptions,
    dependency_ids,
    positive_seconds,
    validate_dependency_failure,
)
from jobqueue.queue import JobQueue, get_default_queue, queue_for_engine

if TYPE_CHECKING:
    from jobqueue.calls import AnySession

P = ParamSpec("P")


class UsingArgs(TypedDict, total=False):
    """What ``using(...)`` can change for the calls that follow (``None``: unchanged).

    ``connection=`` or ``session=`` writes the job inside the caller's transaction (it commits
    or rolls back with the business data that caused it); ``jobqueue=`` picks the database,
    else the default :class:`~jobqueue.queue.JobQueue` is used. ``depends_on=`` (handles,
    batches or ids) makes the job wait until they have finished; ``on_dependency_failure``
    says what one that did not succeed does to it: ``"cancel"`` (the default) or ``"run"``.
    ``expires_in=`` (after the job is due) or ``expires_at=`` (an aware datetime): not started
    by then, it ends ``expired`` instead of running late. ``block=`` (a timedelta or seconds):
    into a full bounded queue, wait up to that long for room before raising QueueFullError.
    """

    queue: str | None
    priority: int | None
    max_attempts: int | None
    jobqueue: JobQueue | None
    connection: Connection | None
    session: AnySession | None
    unique_key: str | None
    depends_on: Sequence[Any] | None
    on_dependency_failure: str | None
    expires_in: float | timedelta | None
    expires_at: datetime | None
    block: float | timedelta | None


class Enqueuer(Generic[P]):
    """Enqueues one job name with options fixed by ``using(...)``; immutable, so safe to share.

    Typed by the job's parameters (``P``): ``send.using(queue="mail").enqueue(...)`` is checked
    against ``send``'s signature like ``send.enqueue(...)``. :func:`by_name` gives an
    ``Enqueuer[...]``, which takes any arguments (the code may not be importable here).
    """

    __slots__ = (
        "_block",
        "_connection",
        "_dependencies",
        "_expires_at",
        "_jobqueue",
        "_name",
        "_options",
        "_session",
        "_unique_key",
    )

    def __init__(
        self,
        name: str,
        options: JobOptions,
        *,
        jobqueue: JobQueue | None = None,
        connection: Connection | None = None,
        session: AnySession | None = None,
        unique_key: str | None = None,
        dependencies: tuple[tuple[str, ...], str] = ((), "cancel"),
        expires_at: datetime | None = None,
        block: float | None = None,
    ) -> None:
        """``options`` are taken as they are (validated already): this runs on every enqueue."""
        if connection is not None and session is not None:
            raise ValueError("pass connection= or session=, not both")
        self._name = name
        self._options = options
        self._jobqueue = jobqueue
        self._connection = connection
        self._session = session
        self._unique_key = unique_key
        self._dependencies = dependencies
        self._expires_at = expires_at
        self._block = block

    def using(self, **changes: Unpack[UsingArgs]) -> Enqueuer[P]:
        """A copy with the given options replaced; an unknown option is a TypeError."""
        unknown = set(changes) - set(UsingArgs.__annotations__)
        if unknown:
            raise TypeError(f"using() got unknown option(s): {', '.join(sorted(unknown))}")
        changed: Enqueuer[P] = Enqueuer(
            self._name,
            self._options.merged(
                queue=changes.get("queue"),
                priority=changes.get("priority"),
                max_attempts=changes.get("max_attempts"),
                expires_in=changes.get("expires_in"),
            ),
            jobqueue=changes.get("jobqueue") or self._jobqueue,
            connection=changes.get("connection") or self._connection,
            session=changes.get("session") or self._session,
            unique_key=changes.get("unique_key") or self._unique_key,
            dependencies=self._changed_dependencies(changes),
            expires_at=self._changed_expiry(changes),
            block=positive_seconds("block", changes.get("block")) or self._block,
        )
        return changed

    def _changed_expiry(self, changes: UsingArgs) -> datetime | None:
        """A fixed ``expires_at``; ``expires_in=`` given now replaces one given before."""
        expires_at = changes.get("expires_at")
        if expires_at is not None:
            if changes.get("expires_in") is not None:
                raise ValueError("pass expires_in= or expires_at=, not both")
            return require_aware(expires_at)
        return None if changes.get("expires_in") is not None else self._expires_at

    def _changed_dependencies(self, changes: UsingArgs) -> tuple[tuple[str, ...], str]:
        depends_on, policy = self._dependencies
        given_ids, given_policy = changes.get("depends_on"), changes.get("on_dependency_failure")
        if given_ids is not None:
            depends_on = dependency_ids(given_ids)
        if given_policy is not None:
            policy = validate_dependency_failure(given_policy)
        return depends_on, policy

    def _build(self, args: Any, kwargs: Any, scheduled_for: datetime | None = None) -> JobCall:
        depends_on, policy = self._dependencies
        return build_call(
            self._name,
            self._options,
            args,
            kwargs,
            scheduled_for=scheduled_for,
            unique_key=self._unique_key,
            depends_on=depends_on,
            on_dependency_failure=policy,
            expires_at=self._expires_at,
        )

    def call(self, *args: P.args, **kwargs: P.kwargs) -> JobCall:
        """A :class:`JobCall` to pass to ``enqueue_many``."""
        return self._build(args, kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Run as soon as a worker is free."""
        return self._write(self._build(args, kwargs))

    def enqueue_in(self, delay: timedelta, /, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Run after ``delay`` (a ``timedelta``) has passed."""
        if not isinstance(delay, timedelta):
            raise TypeError(f"enqueue_in() takes a timedelta first, not {type(delay).__name__}")
        return self._write(self._scheduled(datetime.now(UTC) + delay, args, kwargs))

    def enqueue_at(self, when: datetime, /, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Run at ``when``, an aware datetime (a naive one is refused)."""
        return self._write(self._scheduled(require_aware(when), args, kwargs))

    def enqueue_many(self, calls: Sequence[JobCall]) -> list[EnqueuedJob]:
        """Write ``calls`` in one transaction, to this enqueuer's database or transaction."""
        handles = (self._jobqueue or get_default_queue()).enqueue_many(
            calls, connection=self._connection, session=self._session, block=self._block
        )
        if self._jobqueue is None and (self._connection or self._session) is not None:
            # Written through the caller's transaction: the handles read from its database.
            engine = _engine_of(self._connection, self._session)
            # An async engine (AsyncSession.run_sync) cannot serve fetch()'s blocking reads.
            bound = None if engine.dialect.is_async else queue_for_engine(engine)
            handles = [replace(handle, jobqueue=bound) for handle in handles]
        return handles

    def _scheduled(self, when: datetime, args: Any, kwargs: Any) -> JobCall:
        return self._build(args, kwargs, scheduled_for=when)

    def _write(self, call: JobCall) -> EnqueuedJob:
        return self.enqueue_many([call])[0]


def _engine_of(connection: Connection | None, session: AnySession | None) -> Engine:
    if connection is not None:
        return connection.engine
    assert session is not None
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def by_name(
    name: str,
    *,
    queue: str | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
) -> Enqueuer[...]:
    """An enqueuer for a job this process may not import: options come from the registry if
    the name is registered here, else from the arguments and the defaults."""
    name, options = target_options(name)
    return Enqueuer(name, options.merged(queue=queue, priority=priority, max_attempts=max_attempts))
