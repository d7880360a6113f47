"""Running a Django task in a jobqueue worker, as Django's request cycle would run a view:
stale database connections closed before and after, ``task_started`` before the function and
``task_finished`` once the task has ended (succeeded, or failed with no attempt left). A signal
receiver that raises is logged and changes nothing: the outcome is the task's."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from django.db import close_old_connections
from django.dispatch import Signal
from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.signals import task_finished, task_started
from ulid import ULID

from jobqueue.context import current_database, current_job
from jobqueue.contrib.django.known import find_task
from jobqueue.contrib.django.results import task_errors
from jobqueue.errors import UnknownJobError
from jobqueue.store.history import failed_attempts

log = structlog.get_logger("jobqueue.django")


def run_task(path: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Run the task registered as ``path`` for the attempt running here."""
    task = find_task(path)
    if task is None:  # pragma: no cover - registered with the job definition that calls this
        raise UnknownJobError(f"the Django task {path!r} is not registered in this process")
    result = _running_result(task, args, kwargs)
    close_old_connections()
    try:
        send_robustly(task_started, type(task.get_backend()), result)
        try:
            if task.takes_context:
                value = task.call(TaskContext(task_result=result), *args, **kwargs)
            else:
                value = task.call(*args, **kwargs)
        except BaseException as error:
            job = current_job()
            if job is None or job.is_last_attempt:
                _finish(result, TaskResultStatus.FAILED, error=error)
                send_robustly(task_finished, type(task.get_backend()), result)
            raise
        _finish(result, TaskResultStatus.SUCCESSFUL, value=value)
        send_robustly(task_finished, type(task.get_backend()), result)
        return value
    finally:
        close_old_connections()


def send_robustly(signal: Signal, sender: type, result: TaskResult) -> None:
    """Send ``signal``; a receiver that raises is logged, never the task's outcome."""
    for receiver, response in signal.send_robust(sender, task_result=result):
        if isinstance(response, BaseException):
            log.error(
                "django_task_signal_receiver_failed",
                task_id=result.id,
                receiver=getattr(receiver, "__qualname__", repr(receiver)),
                error="".join(traceback.format_exception(response)),
            )


def _running_result(task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
    """The TaskResult of the attempt starting here: its earlier failures (one read, skipped
    on a first attempt) and the workers that ran them, then this worker."""
    job, database = current_job(), current_database()
    now = datetime.now(UTC)
    history = []
    if job is not None and database is not None and job.failed_attempts > 0:
        with database.transaction(read_only=True) as connection:
            history = failed_attempts(connection, job.id)
    job_id = job.id if job is not None else str(ULID())
    return TaskResult(
        task=task,
        id=job_id,
        status=TaskResultStatus.RUNNING,
        enqueued_at=ULID.from_str(job_id).datetime,
        started_at=now,
        finished_at=None,
        last_attempted_at=now,
        args=list(args),
        kwargs=dict(kwargs),
        backend=task.backend,
        errors=task_errors(history),
        worker_ids=[a.process_id for a in history] + ([job.claimed_by] if job else []),
    )


def _finish(
    result: TaskResult, status: str, *, value: Any = None, error: BaseException | None = None
) -> None:
    """Mark the in-memory result ended (the row is written by the worker after this)."""
    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", datetime.now(UTC))
    if error is not None:
        kind = type(error)
        result.errors.append(
            TaskError(
                exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
                traceback="".join(traceback.format_exception(error)),
            )
        )
    else:
        object.__setattr__(result, "_return_value", value)
