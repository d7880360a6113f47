"""The Django tier: run by tests/test_django_tier.py in a Python >= 3.12 environment with
Django 6 and pytest-django, against examples/django_site (SQLite, then PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

SITE = Path(__file__).resolve().parents[2] / "examples" / "django_site"


@pytest.fixture(scope="session", autouse=True)
def _jobqueue_schema(django_db_setup: None, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    from django.tasks import task_backends

    with django_db_blocker.unblock():
        call_command("jobrunner", "migrate")
    yield
    # Our pool's connections would keep the test database from being dropped.
    task_backends["default"].jobqueue.engine.dispose()


@pytest.fixture(autouse=True)
def _empty_queue(transactional_db: None) -> Iterator[None]:
    from django.tasks import task_backends

    yield
    with task_backends["default"].jobqueue.transaction() as connection:
        from jobqueue.schema import job_errors, job_queue

        connection.execute(job_errors.delete())
        connection.execute(job_queue.delete())


@pytest.fixture
def work() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``manage.py jobrunner work --burst`` (a real worker process) to the end."""

    def run(*extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "manage.py", "jobrunner", "work", "--burst", *extra],
            cwd=SITE,
            env={**os.environ, "PYTHONPATH": str(SITE)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    return run
