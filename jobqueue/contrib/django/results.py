"""A job's row and attempt history as Django's ``TaskResult``.

| jobqueue status | TaskResult.status |
|---|---|
| ``pending`` (due, scheduled for later, waiting for a retry), ``blocked`` and ``waiting`` | READY |
| ``running`` | RUNNING |
| ``succeeded`` | SUCCESSFUL |
| ``failed`` | FAILED |
| ``cancelled`` | FAILED, its last error a ``jobqueue.errors.JobCancelledError`` |
| ``expired`` | FAILED, its last error a ``jobqueue.errors.JobExpiredError`` |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils.module_loading import import_string

from jobqueue.contrib.django.known import find_task
from jobqueue.error_record import ErrorRecord
from jobqueue.schema import (
    BLOCKED,
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    WAITING,
)
from jobqueue.serialization import decode_value
from jobqueue.store.history import FailedAttempt
from jobqueue.store.jobs import JobRecord

STATUSES = {
    PENDING: TaskResultStatus.READY,
    BLOCKED: TaskResultStatus.READY,
    WAITING: TaskResultStatus.READY,
    RUNNING: TaskResultStatus.RUNNING,
    SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    FAILED: TaskResultStatus.FAILED,
    CANCELLED: TaskResultStatus.FAILED,
    EXPIRED: TaskResultStatus.FAILED,
}
_CANCELLED = TaskError(
    exception_class_path="jobqueue.errors.JobCancelledError",
    traceback="jobqueue.errors.JobCancelledError: the job was cancelled by an operator\n",
)

_EXPIRED = TaskError(
    exception_class_path="jobqueue.errors.JobExpiredError",
    traceback="jobqueue.errors.JobExpiredError: the task had not started by its expires_at\n",
)


def task_result(row: JobRecord, history: Sequence[FailedAttempt], *, alias: str) -> TaskResult:
    """The TaskResult of ``row``; ``TaskResultDoesNotExist`` if it is not a Django task's."""
    task = _task_of(row, alias)
    errors = task_errors(history)
    if row.status == CANCELLED:
        errors.append(_CANCELLED)
    elif row.status == EXPIRED:
        errors.append(_EXPIRED)
    workers = [attempt.process_id for attempt in history]
    if row.status in (RUNNING, SUCCEEDED) and row.claimed_by is not None:
        workers.append(row.claimed_by)
    result = TaskResult(
        task=task,
        id=row.id,
        status=STATUSES[row.status],
        enqueued_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        last_attempted_at=row.started_at,
        args=row.args,
        kwargs=row.kwargs,
        backend=alias,
        errors=errors,
        worker_ids=workers,
    )
    if row.status == SUCCEEDED and row.result is not None:
        object.__setattr__(result, "_return_value", decode_value(row.result))
    return result


def task_errors(history: Sequence[FailedAttempt]) -> list[TaskError]:
    """Each failed attempt's error as Django's TaskError (class path and traceback)."""
    errors = []
    for attempt in history:
        record = ErrorRecord.parse(attempt.error)
        errors.append(
            TaskError(
                exception_class_path=record.type,
                traceback=record.traceback or f"{record.summary}\n",
            )
        )
    return errors


def _task_of(row: JobRecord, alias: str) -> Task:
    """The row's task as it was enqueued (queue, priority), on the backend ``alias``."""
    task: Any = find_task(row.name)
    if task is None:
        # Not imported in this process yet: the row names it by module path, as Django's
        # own pickled tasks do; anything there that is not a Task is not ours to describe.
        try:
            task = import_string(row.name)
        except ImportError:
            task = None
    if not isinstance(task, Task):
        raise TaskResultDoesNotExist(f"{row.id} is not the id of a Django task")
    return task.using(
        priority=max(-100, min(100, -row.priority)),
        queue_name=row.queue,
        backend=alias,
    )
