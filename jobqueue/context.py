"""What a running job sees: :func:`current_job`, :func:`cancel_requested`, and the global
:func:`on_failure` / :func:`on_retry` hooks it may trigger.

The worker (and :func:`jobqueue.testing.drain`) enter :func:`job_context` around each attempt,
so these answer for the job running in the calling thread or task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

from jobqueue.database import Database
from jobqueue.store.claimed import ClaimedJob

_current_job: ContextVar[ClaimedJob | None] = ContextVar("jobqueue_current_job", default=None)
#: The database the running job's attempt is recorded in (its steps are written there).
_current_database: ContextVar[Database | None] = ContextVar("jobqueue_database", default=None)
#: The running worker's "stop at the next step" signal: set when it stops gracefully, a job
#: between durable steps is released at its next ``step`` call, one inside ``iterate`` at its
#: next item (see :mod:`jobqueue.steps`). Per worker, so one worker's stop never reaches a job
#: run elsewhere in the process (``drain``, another worker).
_current_stop: ContextVar[threading.Event | None] = ContextVar("jobqueue_stop", default=None)

_global_failure_hooks: list[Callable[..., Any]] = []
_global_retry_hooks: list[Callable[..., Any]] = []

_cancel_requested: set[str] = set()


class JobTimeoutError(Exception):
    """The attempt ran longer than the job's ``timeout``."""


def current_job() -> ClaimedJob | None:
    """The job this code runs in (id, name, queue, attempts), or None outside a job."""
    return _current_job.get()


def cancel_requested() -> bool:
    """True when an operator asked the job running in this thread or task to stop.

    Long jobs check it between units of work and ``raise JobCancelled()`` (or return early);
    the request reaches the worker with its next heartbeat.
    """
    job = _current_job.get()
    return job is not None and job.id in _cancel_requested


def request_cancel(job_id: str) -> None:
    """Mark a running job as asked to stop (the worker calls this when an operator cancels)."""
    _cancel_requested.add(job_id)


def forget_cancel(job_id: str) -> None:
    _cancel_requested.discard(job_id)


def on_failure(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``hook(job, error)`` for every job whose attempt failed for good."""
    _global_failure_hooks.append(hook)
    return hook


def on_retry(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``hook(job, error)`` for every failed attempt that will be retried."""
    _global_retry_hooks.append(hook)
    return hook


def global_hooks(*, retrying: bool) -> list[Callable[..., Any]]:
    return list(_global_retry_hooks if retrying else _global_failure_hooks)


def current_database() -> Database | None:
    """The database of the attempt running here (None outside a worker or ``drain``)."""
    return _current_database.get()


def stopping() -> bool:
    """Whether the worker running this job is stopping gracefully (see ``_current_stop``)."""
    event = _current_stop.get()
    return event is not None and event.is_set()


@contextmanager
def job_context(
    job: ClaimedJob, database: Database | None = None, stop: threading.Event | None = None
) -> Iterator[None]:
    """Bind the job to the logging context and to :func:`current_job` while it runs, and, for
    durable steps, the database its attempt is recorded in and its worker's stop signal."""
    token = _current_job.set(job)
    database_token = _current_database.set(database)
    stop_token = _current_stop.set(stop)
    with structlog.contextvars.bound_contextvars(**job.log_fields):
        try:
            yield
        finally:
            _current_stop.reset(stop_token)
            _current_database.reset(database_token)
            _current_job.reset(token)
