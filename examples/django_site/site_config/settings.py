"""A minimal Django 6 site whose tasks run on jobqueue (see docs/django.md).

The database is SQLite beside this file unless ``SITE_DATABASE`` says ``postgresql`` or
``mysql`` (the test tier sets it, and ``SITE_DATABASE_NAME``). jobqueue's tables live in the
same database, so a task enqueued in a view's ``transaction.atomic()`` commits or rolls back
with it.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "site_config.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "jobqueue.contrib.django", "shop"]

if os.environ.get("SITE_DATABASE") == "mysql":  # MariaDB or MySQL, through mysqlclient
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("SITE_DATABASE_NAME", "shop"),
            "USER": "root",
            "HOST": "127.0.0.1",
            "PORT": "3306",
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {
                "NAME": os.environ.get("SITE_DATABASE_NAME", "test_shop"),
                "CHARSET": "utf8mb4",
            },
        }
    }
elif os.environ.get("SITE_DATABASE") == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("SITE_DATABASE_NAME", "shop"),
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "TEST": {"NAME": os.environ.get("SITE_DATABASE_NAME", "test_shop")},
        }
    }
else:
    sqlite_file = os.environ.get("SITE_DATABASE_NAME", str(BASE_DIR / "shop.sqlite3"))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite_file,
            "TEST": {"NAME": sqlite_file},
        }
    }

TASKS = {
    "default": {
        "BACKEND": "jobqueue.contrib.django.JobQueueBackend",
        "QUEUES": ["default", "mail"],
        "OPTIONS": {"DATABASE": "default", "MAX_ATTEMPTS": 2},
    }
}
