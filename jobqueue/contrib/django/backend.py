"""``JobQueueBackend``: Django's ``TASKS`` backend on jobqueue.

A task is a jobqueue job named by the task's module path (``myapp.tasks.send_mail``); enqueue
writes its row (in the caller's ``transaction.atomic()`` when jobqueue's database is that
connection's, see :mod:`jobqueue.contrib.django.borrowed`), a worker claims and runs it
(:mod:`jobqueue.contrib.django.running`), and ``get_result`` reads the row and its attempt
history back as a ``TaskResult`` (:mod:`jobqueue.contrib.django.results`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from django.db import connections
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from jobqueue.calls import JobCall
from jobqueue.config import resolve_database_url
from jobqueue.contrib.django import borrowed, running
from jobqueue.contrib.django.results import task_result
from jobqueue.contrib.django.tasks import register_task
from jobqueue.options import MAX_NAME_LENGTH, validate_queue_name, well_formed_id
from jobqueue.queue import JobQueue
from jobqueue.store.history import failed_attempts
from jobqueue.store.jobs import fetch_job

#: Attempts a task gets when OPTIONS names none: a task that raises is retried twice, with
#: jobqueue's backoff, then FAILED.
DEFAULT_MAX_ATTEMPTS = 3


class JobQueueBackend(BaseTaskBackend):
    """Django tasks stored and run by jobqueue. OPTIONS (all optional):

    - ``DATABASE``: a Django database alias; jobqueue uses that database (and so joins its
      transactions). ``DATABASE_URL``: a SQLAlchemy URL instead. Neither: jobqueue's own
      resolution (``JOBQUEUE_DATABASE_URL``, ``[tool.jobqueue]`` in pyproject.toml).
    - ``MAX_ATTEMPTS``: attempts per task (default 3).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: Mapping[str, Any]) -> None:
        super().__init__(alias, params)
        options = dict(self.options)
        self.database_alias: str | None = options.pop("DATABASE", None)
        self.database_url: str | None = options.pop("DATABASE_URL", None)
        self.max_attempts: int = options.pop("MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
        if options:
            raise InvalidTask(f"unknown OPTIONS for the jobqueue tasks backend: {sorted(options)}")
        if self.database_alias is not None and self.database_url is not None:
            raise InvalidTask("OPTIONS: give DATABASE (a Django alias) or DATABASE_URL, not both")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidTask(f"OPTIONS MAX_ATTEMPTS must be an integer, not {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise InvalidTask(f"OPTIONS MAX_ATTEMPTS must be at least 1, not {self.max_attempts}")
        self._queues: dict[str, JobQueue] = {}
        self._lock = threading.Lock()

    # -- where the jobs are --------------------------------------------------------------

    @property
    def url(self) -> str:
        """jobqueue's database URL, read at each use: a Django alias's settings can change
        under it (the test runner renames the database)."""
        if self.database_alias is not None:
            return borrowed.url_of(connections[self.database_alias])
        return self.database_url or resolve_database_url()

    @property
    def jobqueue(self) -> JobQueue:
        """The :class:`~jobqueue.JobQueue` behind this backend (one per URL, kept)."""
        url = self.url
        with self._lock:
            queue = self._queues.get(url)
            if queue is None:
                queue = self._queues[url] = JobQueue(url)
            return queue

    # -- Django's API ----------------------------------------------------------------------

    def validate_task(self, task: Task) -> None:
        """Django's checks, then ours (a name, a queue we can store); a valid task is
        registered by its module path so a worker can run it."""
        super().validate_task(task)
        if len(task.module_path) > MAX_NAME_LENGTH:
            raise InvalidTask(
                f"the task's module path is longer than {MAX_NAME_LENGTH} characters, "
                "jobqueue's limit for a job name"
            )
        try:
            validate_queue_name(task.queue_name)
        except ValueError as error:
            raise InvalidTask(str(error)) from None
        register_task(task, self.max_attempts)

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TaskResult:
        """Write the task's job: in the open ``atomic()`` block of the Django connection to
        jobqueue's database if there is one (it commits or rolls back with the block), else
        at once in a transaction of its own."""
        self.validate_task(task)
        queue = self.jobqueue
        try:
            call = JobCall(
                name=task.module_path,
                args=list(args),
                kwargs=dict(kwargs),
                queue=task.queue_name,
                priority=-task.priority,  # Django: higher first; jobqueue: lower first
                max_attempts=self.max_attempts,
                scheduled_for=_aware(task.run_after),
            )
            with borrowed.atomic_connection(queue.database_url) as connection:
                (handle,) = queue.enqueue_many([call], connection=connection)
        except (ValueError, TypeError) as error:
            # Bad input (arguments, JSON, size, time): jobqueue's errors for it are ValueError
            # or TypeError. An outage or a missing schema is not the task's fault: it stays
            # DatabaseUnavailableError / SchemaError.
            raise InvalidTask(f"{task.module_path}: {error}") from error
        now = datetime.now(UTC)
        result = TaskResult(
            task=task,
            id=handle.id,
            status=TaskResultStatus.READY,
            enqueued_at=now,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        running.send_robustly(task_enqueued, type(self), result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The task's result as stored now (``TaskResultDoesNotExist`` for an unknown id)."""
        queue = self.jobqueue
        with queue.transaction(read_only=True) as connection:
            row = fetch_job(connection, str(result_id)) if well_formed_id(result_id) else None
            if row is None:
                raise TaskResultDoesNotExist(result_id)
            history = failed_attempts(connection, row.id)
        return task_result(row, history, alias=self.alias)


def _aware(run_after: datetime | None) -> datetime | None:
    """``run_after`` as an aware datetime: a naive one (USE_TZ = False) is in Django's time
    zone, as Django reads every naive datetime then."""
    if run_after is None or timezone.is_aware(run_after):
        return run_after
    zone = timezone.get_default_timezone() if django_settings.USE_TZ is False else UTC
    aware: datetime = timezone.make_aware(run_after, zone)
    return aware
