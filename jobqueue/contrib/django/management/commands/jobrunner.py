"""``python manage.py jobrunner ...``: jobqueue's command line with this project's settings.

``work`` runs workers for the Django tasks (Django set up in each worker process, the database
of the ``default`` tasks backend unless ``--database-url`` says otherwise); every other command
(``migrate``, ``jobs``, ``queues``, ...) acts on that same database.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobqueue.contrib.django.worker import jobrunner_arguments


class Command(BaseCommand):
    help = "jobqueue's command line (work, migrate, jobs, queues, ...) for this Django project"

    def add_arguments(self, parser: CommandParser) -> None:
        # Everything from jobrunner's command on is jobrunner's, options included.
        parser.add_argument(
            "args", nargs=argparse.REMAINDER, help="jobrunner's arguments, e.g. work --threads 4"
        )

    def run_from_argv(self, argv: list[str]) -> None:
        # jobrunner parses its own options: everything after 'jobrunner' is passed through.
        from jobqueue.cli.main import main

        status = main(jobrunner_arguments(argv[2:]))
        if status:
            raise SystemExit(status)

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command('jobrunner', 'work', '--burst')``: the same, from code."""
        from jobqueue.cli.main import main

        status = main(jobrunner_arguments(list(args)))
        if status:
            raise CommandError(f"jobrunner exited with status {status}")
