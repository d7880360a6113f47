"""Imported by a worker as its first ``--app`` when it runs Django tasks (``manage.py jobrunner
work``, ``jobrunner work --django-settings``): sets Django up from ``DJANGO_SETTINGS_MODULE``,
which discovers every installed app's ``tasks`` module so the worker knows each task by name,
and points jobqueue at the tasks backend's database unless ``JOBQUEUE_DATABASE_URL`` (or
``--database-url``) names one. Import-time work by design: a worker imports its apps once, at
start, in every process the supervisor starts."""

from __future__ import annotations

import os

import django

from jobqueue.config import ENV_DATABASE_URL
from jobqueue.contrib.django.worker import backend_url

django.setup()
os.environ.setdefault(ENV_DATABASE_URL, backend_url())
