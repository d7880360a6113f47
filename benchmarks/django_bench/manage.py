#!/usr/bin/env python
"""The benchmark project's manage.py: ``manage.py jobrunner work`` (jobqueue) and
``manage.py db_worker`` (django-tasks-db) run the workers, ``migrate`` sets the database up."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The settings and the app are imported as benchmarks.django_bench.*, from the repository
    # (last on the path, so a PYTHONPATH naming a jobqueue checkout to measure comes first).
    repository = str(Path(__file__).resolve().parents[2])
    if repository not in sys.path:
        sys.path.append(repository)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_bench.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
