"""Settings for ``benchmarks/django_tasks.py``, chosen by environment variables:

- ``BENCH_DJ_SYSTEM``: ``jobqueue`` (``jobqueue.contrib.django.JobQueueBackend``) or
  ``django-tasks-db`` (``django_tasks_db.DatabaseBackend``);
- ``BENCH_DJ_DATABASE``: ``sqlite`` or ``postgresql``;
- ``BENCH_DJ_NAME``: the SQLite file, or the PostgreSQL database (postgres@127.0.0.1:5432);
- ``BENCH_DJ_CONN_MAX_AGE``: Django's ``CONN_MAX_AGE``, seconds or ``none`` (persistent
  connections); default 0, Django's default: a connection is closed at the end of each
  request, and of each task.

SQLite runs in WAL mode with ``synchronous = NORMAL`` for Django's connection too, the settings
jobqueue's own connections use, so both backends write to the file the same way. Everything
else is Django's default.
"""

import os
from typing import Any

SYSTEM = os.environ["BENCH_DJ_SYSTEM"]
DATABASE = os.environ["BENCH_DJ_DATABASE"]
NAME = os.environ["BENCH_DJ_NAME"]

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_max_age = os.environ.get("BENCH_DJ_CONN_MAX_AGE", "0")
CONN_MAX_AGE = None if _max_age == "none" else int(_max_age)

DATABASES: dict[str, dict[str, Any]]
if DATABASE == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": NAME,
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
elif DATABASE == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": NAME,
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
        }
    }
else:
    raise RuntimeError(f"BENCH_DJ_DATABASE must be sqlite or postgresql, not {DATABASE!r}")

APP = "benchmarks.django_bench.noop_app"
if SYSTEM == "jobqueue":
    INSTALLED_APPS = ["jobqueue.contrib.django", APP]
    TASKS = {
        "default": {
            "BACKEND": "jobqueue.contrib.django.JobQueueBackend",
            "OPTIONS": {"DATABASE": "default"},
        }
    }
elif SYSTEM == "django-tasks-db":
    INSTALLED_APPS = ["django_tasks_db", APP]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
else:
    raise RuntimeError(f"BENCH_DJ_SYSTEM must be jobqueue or django-tasks-db, not {SYSTEM!r}")
