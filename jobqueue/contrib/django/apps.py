"""The Django app: discovers each installed app's ``tasks`` module at start-up, so every process
(web or worker) knows the tasks by name before a row names one, and registers the system
check that warns while jobqueue's schema is behind."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class JobQueueConfig(AppConfig):
    name = "jobqueue.contrib.django"
    label = "jobqueue"
    verbose_name = "jobqueue"

    def ready(self) -> None:
        from jobqueue.contrib.django.checks import schema_is_current

        autodiscover_modules("tasks")
        checks.register(schema_is_current, checks.Tags.database)
