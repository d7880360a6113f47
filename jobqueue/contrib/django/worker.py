"""What ``manage.py jobrunner`` and ``jobrunner work --django-settings`` add to jobqueue's
command line: the database of the project's jobqueue tasks backend, and for ``work`` the
settings module, so each worker process sets Django up (:mod:`jobqueue.contrib.django.boot`)."""

from __future__ import annotations

import os
from collections.abc import Sequence


def jobrunner_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` (jobrunner's arguments) completed for this Django project."""
    arguments = list(argv)
    if not arguments or arguments[0].startswith("-"):
        return arguments
    given = any(a == "--database-url" or a.startswith("--database-url=") for a in arguments)
    if not given:
        arguments += ["--database-url", backend_url()]
    if arguments[0] == "work":
        arguments += ["--django-settings", os.environ["DJANGO_SETTINGS_MODULE"]]
    return arguments


def backend_url() -> str:
    """The database of the ``default`` tasks backend if it is jobqueue's, else of the first
    jobqueue one."""
    from django.tasks import task_backends

    from jobqueue.contrib.django.backend import JobQueueBackend

    backends = [b for b in task_backends.all() if isinstance(b, JobQueueBackend)]
    if not backends:
        from jobqueue.errors import ConfigurationError

        raise ConfigurationError(
            "no TASKS backend is jobqueue.contrib.django.JobQueueBackend in these settings"
        )
    chosen = next((b for b in backends if b.alias == "default"), backends[0])
    return chosen.url
