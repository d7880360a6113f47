"""Django 6's tasks framework (``django.tasks``) on jobqueue: a backend for ``TASKS`` and an app
for ``INSTALLED_APPS`` (``"jobqueue.contrib.django"``), so ``@task`` functions are enqueued in
your transaction, run by ``manage.py jobrunner work``, recovered after a crash and retried.

Install with ``pip install 'jobqueue[django]'`` (Django 6 needs Python >= 3.12). See
docs/django.md.
"""

from __future__ import annotations

from jobqueue.contrib.django.backend import JobQueueBackend

__all__ = ["JobQueueBackend"]
