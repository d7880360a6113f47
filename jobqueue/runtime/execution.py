"""Running one claimed job and deciding what its attempt means.

Shared by the worker and by :mod:`jobqueue.testing`, so a job behaves the same in both. The
decision (retry at a time, fail, cancel) is made here; writing it is the caller's, fenced.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from jobqueue import tracing
from jobqueue.context import JobTimeoutError, global_hooks, job_context
from jobqueue.database import Database
from jobqueue.error_record import ErrorRecord
from jobqueue.errors import (
    JobArgumentsError,
    PayloadTooLargeError,
    SerializationError,
    UnknownJobError,
)
from jobqueue.registry import JobDefinition, registry
from jobqueue.retry import (
    FailJob,
    JobCancelled,
    ReleaseAtStep,
    RetryJob,
    SleepUntil,
    backoff_delay,
)
from jobqueue.schema import CANCELLED, EXPIRED, FAILED, PENDING, SUCCEEDED
from jobqueue.serialization import decode_arguments, encode_value
from jobqueue.store.claimed import ClaimedJob

log = structlog.get_logger("jobqueue.worker")

#: Outcome status of an attempt whose job name this worker does not know: back to pending
#: later without counting a failed attempt (see :func:`decide`).
SNOOZED = "snoozed"
#: Outcome status of an attempt that ended in ``durable_sleep``: pending until its wake time,
#: uncounted, its error untouched.
SLEEPING = "sleeping"
#: Outcome status of a job handed back at shutdown (no failed attempt counted).
RELEASED = "released"
MAX_SNOOZE_SECONDS = 3600.0


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: ``succeeded``, or a failure with the status to write."""

    status: str  # succeeded | pending (retry) | failed | cancelled | expired
    error: str | None = None
    retry_at: datetime | None = None
    exception: BaseException | None = None
    #: A succeeded job's return value as JSON text (None when it returned None).
    result: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


SUCCESS = Outcome(SUCCEEDED)


def resolve(job: ClaimedJob) -> tuple[JobDefinition, list[Any], dict[str, Any]]:
    """The registered definition and decoded arguments; raises for an unknown name or bad row."""
    definition = registry.get(job.name)
    args, kwargs = decode_arguments(job.args_json)
    return definition, args, kwargs


def invoke(
    definition: JobDefinition, target: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> Any:
    """Call the job; a ``TypeError`` because the arguments do not fit its signature (the
    producer had no code to check them, or the code changed since) becomes
    :class:`JobArgumentsError`, which fails the job at once: no retry can fix the arguments.
    Checked only after a ``TypeError``, so a job that runs pays nothing for it."""
    try:
        return target(*args, **kwargs)
    except TypeError:
        definition.check_arguments(args, kwargs)  # raises if the call itself did not fit
        raise


def run_sync(
    job: ClaimedJob, database: Database | None = None, stop: threading.Event | None = None
) -> Outcome:
    """Run a job to completion in this thread (async jobs on a private event loop), in its
    trace span when OpenTelemetry is installed."""
    if not tracing.recording():
        return _run_sync(job, database, stop)
    with tracing.processing(**_span_fields(job)) as span:
        return _traced(span, _run_sync(job, database, stop))


async def run_async(
    job: ClaimedJob, database: Database | None = None, stop: threading.Event | None = None
) -> Outcome:
    """Run an ``async def`` job on the current event loop, with its timeout, in its trace
    span when OpenTelemetry is installed."""
    if not tracing.recording():
        return await _run_async(job, database, stop)
    with tracing.processing(**_span_fields(job)) as span:
        return _traced(span, await _run_async(job, database, stop))


def _span_fields(job: ClaimedJob) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "name": job.name,
        "queue": job.queue,
        "attempt": job.attempts,
        "trace_context": job.trace_context,
    }


def _traced(span: Any, outcome: Outcome) -> Outcome:
    if not outcome.succeeded:
        tracing.failed(span, outcome.exception, outcome.status)
    return outcome


def _run_sync(job: ClaimedJob, database: Database | None, stop: threading.Event | None) -> Outcome:
    with job_context(job, database, stop):
        try:
            definition, args, kwargs = resolve(job)
            target = definition.callable_for_run()
            if definition.is_async:
                coroutine = invoke(definition, target, args, kwargs)
                value = asyncio.run(_with_timeout(coroutine, definition.options.timeout))
            else:
                value = invoke(definition, target, args, kwargs)
        except BaseException as error:
            return decide_safely(job, error)
        return succeeded(job, value)


async def _run_async(
    job: ClaimedJob, database: Database | None, stop: threading.Event | None
) -> Outcome:
    with job_context(job, database, stop):
        try:
            definition, args, kwargs = resolve(job)
            target = definition.callable_for_run()
            coroutine = invoke(definition, target, args, kwargs)
            value = await _with_timeout(coroutine, definition.options.timeout)
        except asyncio.CancelledError as error:
            return decide_safely(job, JobTimeoutError(f"cancelled: {error}"))
        except BaseException as error:
            return decide_safely(job, error)
        return succeeded(job, value)


def succeeded(job: ClaimedJob, value: Any) -> Outcome:
    """A success, carrying the job's return value as strict JSON. A value JSON cannot hold
    does not undo the work the job did: the job still succeeds, without a result, and the
    log says why (``job_result_not_recorded``)."""
    if value is None:
        return SUCCESS
    try:
        return Outcome(SUCCEEDED, result=encode_value(value))
    except (SerializationError, PayloadTooLargeError) as error:
        log.warning("job_result_not_recorded", **job.log_fields, error=str(error))
        return SUCCESS


async def _with_timeout(awaitable: Any, timeout: float | None) -> Any:
    if timeout is None:
        return await awaitable
    try:
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError:
        raise JobTimeoutError(f"the job ran longer than its timeout of {timeout:g} s") from None


def decide(job: ClaimedJob, error: BaseException, now: datetime | None = None) -> Outcome:
    """Turn a failed attempt into an outcome: retry (pending at a time), failed, or cancelled."""
    now = now or datetime.now(UTC)
    definition = registry.find(job.name)
    options = definition.options if definition is not None else None
    text = ErrorRecord.of(error).to_json()
    if isinstance(error, UnknownJobError):
        # Not the job's failure but this worker's ignorance (a deploy in progress, a worker
        # started without the module): the job waits for one that knows the name, backing off
        # to an hour, and never uses up its attempts for it.
        delay = min(backoff_delay(job.attempts, None), MAX_SNOOZE_SECONDS)
        return Outcome(SNOOZED, text, now + timedelta(seconds=delay), None)
    if isinstance(error, SleepUntil):
        return Outcome(SLEEPING, None, error.wake_at, None)
    if isinstance(error, ReleaseAtStep):
        return Outcome(RELEASED)
    if isinstance(error, FailJob | JobArgumentsError):
        return Outcome(FAILED, text, None, error)
    if isinstance(error, JobCancelled):
        return Outcome(CANCELLED, text, None, error)
    if options is not None and options.discard_on and isinstance(error, options.discard_on):
        return Outcome(CANCELLED, text, None, error)
    if (
        options is not None
        and options.retry_on is not None
        and not isinstance(error, (*options.retry_on, RetryJob))
    ):
        return Outcome(FAILED, text, None, error)
    if job.is_last_attempt:
        return Outcome(FAILED, text, None, error)
    retry_at = error.retry_at(now) if isinstance(error, RetryJob) else None
    if retry_at is None:
        delay = backoff_delay(job.failed_attempts + 1, options.backoff if options else None)
        retry_at = now + timedelta(seconds=delay)
    if job.expires_at is not None and retry_at > job.expires_at:
        return Outcome(EXPIRED, text, None, error)  # the retry would start too late
    return Outcome(PENDING, text, retry_at, error)


def decide_safely(job: ClaimedJob, error: BaseException) -> Outcome:
    """:func:`decide`, and if even that fails (an exception whose ``str`` raises, a backoff
    callable that raises, a retry time out of range), a plain retry: a job must never be left
    ``running`` behind a live worker because recording its failure failed."""
    try:
        return decide(job, error)
    except BaseException as failure:
        text = ErrorRecord.unrecordable(error, failure).to_json()
        if job.is_last_attempt:
            return Outcome(FAILED, text, None, error)
        return Outcome(PENDING, text, datetime.now(UTC) + timedelta(seconds=60), error)


def run_hooks(job: ClaimedJob, outcome: Outcome) -> None:
    """Call the job's and the global on_failure/on_retry hooks; a hook's error is only logged."""
    if outcome.succeeded or outcome.exception is None:
        return
    definition = registry.find(job.name)
    retrying = outcome.status == PENDING
    hooks: list[Callable[..., Any]] = []
    if definition is not None:
        own = definition.options.on_retry if retrying else definition.options.on_failure
        if own is not None:
            hooks.append(own)
    hooks.extend(global_hooks(retrying=retrying))
    for hook in hooks:
        try:
            hook(job, outcome.exception)
        except Exception as error:
            log.error(
                "hook_failed",
                hook=getattr(hook, "__qualname__", repr(hook)),
                error=repr(error),
                exc_info=error,
            )


@dataclass
class Execution:
    """One claimed job. ``settle`` decides, once, who records its outcome: the job's own thread,
    the timeout watchdog, or a shutdown release; ``begin`` lets a thread start it only if no
    release came first."""

    job: ClaimedJob
    started: bool = False
    #: The database knows this attempt started (see :meth:`InFlight.starts_to_record`).
    start_recorded: bool = False
    began_at: float = 0.0
    deadline: float | None = None
    timed_out_at: float | None = None
    _settled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, timeout: float | None) -> bool:
        with self._lock:
            if self._settled:
                return False
            self.started = True
            self.began_at = time.monotonic()
            if timeout:
                self.deadline = self.began_at + timeout
            return True

    def settle(self, *, only_if_unstarted: bool = False) -> bool:
        with self._lock:
            if self._settled or (only_if_unstarted and self.started):
                return False
            self._settled = True
            return True
