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
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from jobqueue import metrics
from jobqueue.dashboard.context import Dashboard
from jobqueue.dashboard.guards import (
    BodyLimit,
    HostGuard,
    OriginGuard,
    SecurityHeaders,
    body_limit,
)
from jobqueue.dashboard.routes import routes
from jobqueue.dashboard.security import Security
from jobqueue.queue import JobQueue, get_default_queue
from jobqueue.recurring import RecurringTask

__all__ = ["create_app"]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"  # the stylesheet and script: no inline ones (CSP)


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
    # One path segment from data (a queue name, a job id): "/" and ".." stay inside it, so a
    # queue named "a/../../queues/victim" cannot point its form at another queue.
    environment.filters["segment"] = lambda value: quote(str(value), safe="")
    return environment


def _middleware(security: Security, allowed_hosts: Sequence[str]) -> list[Middleware]:
    """The guards, outermost first (see :mod:`.guards`): headers on every answer; without a
    token, the Host check; then the origin of POSTs, their size, and the token."""
    host_check = [] if security.token else [Middleware(HostGuard, allowed_hosts=allowed_hosts)]
    return [
        Middleware(SecurityHeaders),
        *host_check,
        Middleware(OriginGuard),
        Middleware(BodyLimit, limit_for=body_limit),
        Middleware(BaseHTTPMiddleware, dispatch=security.dispatch),
    ]


def create_app(
    jobqueue: JobQueue | None = None,
    *,
    token: str | None = None,
    read_only: bool = False,
    secret: bytes | None = None,
    recurring: Sequence[RecurringTask] | Callable[[], Sequence[RecurringTask]] | None = None,
    allowed_hosts: Sequence[str] = (),
) -> Starlette:
    """The dashboard for ``jobqueue`` (default: the app's default queue).

    ``token`` requires it on every request (Bearer, basic-auth password, or the login form);
    ``read_only`` refuses every action; ``secret`` signs the CSRF and login cookies (random per
    app by default; pass one to share logins across several instances behind a balancer);
    ``recurring`` lists the recurring tasks to show (default: the imported ``@job(cron=...)``
    and pyproject's ``[tool.jobqueue.recurring]``); ``allowed_hosts`` names the hosts (``*``
    any, ``*.example.com`` a domain) a dashboard without a token answers to besides loopback
    ones, which is all it answers to by default: a page of another site whose name resolves to
    this machine (DNS rebinding) gets 400. A ``token`` shorter than 16 characters raises
    :class:`~jobqueue.dashboard.security.WeakTokenError` (a ``ValueError``).
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
    static: list[BaseRoute] = [Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(
        routes=[*routes(dashboard), *static], middleware=_middleware(security, allowed_hosts)
    )
