"""The web dashboard: one Starlette app, served by ``jobrunner dashboard`` or mounted in yours.

    from jobqueue.dashboard import create_app
    app.mount("/jobs", create_app(queue, token="..."))   # inside a Starlette/FastAPI app

WSGI frameworks (Flask, Django) mount the same app through an ASGI-to-WSGI adapter such as
a2wsgi, or run ``jobrunner dashboard`` beside them (docs/dashboard.md). Needs the
``dashboard`` extra: ``pip install 'jobqueue[dashboard]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware

from jobqueue import metrics
from jobqueue.dashboard.context import Dashboard
from jobqueue.dashboard.routes import routes
from jobqueue.dashboard.security import Security
from jobqueue.queue import JobQueue, get_default_queue
from jobqueue.recurring import RecurringTask

__all__ = ["create_app"]

TEMPLATES = Path(__file__).parent / "templates"


def _project_tasks() -> list[RecurringTask]:
    """The recurring tasks this process knows: ``@job(cron=...)`` in the imported apps, and
    ``[tool.jobqueue.recurring]`` in the nearest pyproject.toml. Read per request, so the page
    follows the configuration without a restart."""
    from jobqueue.config import find_project_settings
    from jobqueue.recurring import tasks_from_registry, tasks_from_settings

    return tasks_from_registry() + tasks_from_settings(find_project_settings().values)


def templates() -> Environment:
    """Jinja2 with autoescaping on for every template: job arguments and errors are data
    from producers and job code, and must render as text, never as markup."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["ts"] = lambda value: (
        value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"
    )
    return environment


def create_app(
    jobqueue: JobQueue | None = None,
    *,
    token: str | None = None,
    read_only: bool = False,
    secret: bytes | None = None,
    recurring: Sequence[RecurringTask] | Callable[[], Sequence[RecurringTask]] | None = None,
) -> Starlette:
    """The dashboard for ``jobqueue`` (default: the app's default queue).

    ``token`` requires it on every request (Bearer, basic-auth password, or the login form);
    ``read_only`` refuses every action; ``secret`` signs the CSRF and login cookies (random per
    app by default; pass one to share logins across several instances behind a balancer);
    ``recurring`` lists the recurring tasks to show (default: the imported ``@job(cron=...)``
    and pyproject's ``[tool.jobqueue.recurring]``).
    """
    queue = jobqueue or get_default_queue()
    security = Security(token=token, secret=secret)
    if recurring is None:
        tasks: Callable[[], Sequence[RecurringTask]] = _project_tasks
    elif callable(recurring):
        tasks = recurring
    else:
        fixed = list(recurring)

        def tasks() -> Sequence[RecurringTask]:
            return fixed

    dashboard = Dashboard(
        jobqueue=queue,
        templates=templates(),
        security=security,
        read_only=read_only,
        recurring=tasks,
        metrics_registry=metrics.registry_for(queue),
    )
    return Starlette(
        routes=routes(dashboard),
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=security.dispatch)],
    )
