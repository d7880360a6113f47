"""Django system checks: jobqueue's schema is its own (alembic, ``manage.py jobrunner migrate``),
so ``manage.py migrate`` never creates it; a warning says when it is missing or behind."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.tasks import task_backends

from jobqueue.contrib.django.backend import JobQueueBackend
from jobqueue.errors import JobQueueError


def schema_is_current(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """Warn for each jobqueue tasks backend whose database lacks the current schema. Runs
    only when the check asks for databases (``manage.py check --database default``,
    ``migrate``), as Django's own database checks do."""
    if not databases:
        return []
    messages: list[Any] = []
    for backend in task_backends.all():
        if isinstance(backend, JobQueueBackend):
            messages.extend(_schema_messages(backend))
    return messages


def _schema_messages(backend: JobQueueBackend) -> list[Any]:
    """Not ``backend.check()``: Django runs that on every command, and this reads the
    database, which Django's checks do only when asked to."""
    try:
        backend.jobqueue.verify_schema()
    except JobQueueError as error:
        return [
            checks.Warning(
                f"jobqueue's tables for the tasks backend {backend.alias!r} are not current: "
                f"{error}",
                hint="run `python manage.py jobrunner migrate`",
                id="jobqueue.W001",
            )
        ]
    return []
