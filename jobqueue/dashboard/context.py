"""What every page and action of the dashboard shares: the queue, its Admin, the templates,
the security checks and the settings, and how a page is rendered."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from jobqueue.admin import Admin
from jobqueue.dashboard.security import CSRF_FIELD, Security, prefix, route_path
from jobqueue.queue import JobQueue
from jobqueue.recurring import RecurringTask


@dataclass
class Dashboard:
    """What every route needs: the queue, its Admin, templates, security and settings."""

    jobqueue: JobQueue
    templates: Environment
    security: Security
    read_only: bool
    recurring: Callable[[], Sequence[RecurringTask]]
    metrics_registry: Any

    @property
    def admin(self) -> Admin:
        return Admin(self.jobqueue)

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        base = prefix(request)
        html = self.templates.get_template(template).render(
            request=request,
            root=base,
            csrf_field=CSRF_FIELD,
            csrf_token=self.security.csrf_token(request),
            read_only=self.read_only,
            auth=self.security.token is not None,
            notice=request.query_params.get("notice"),
            here=route_path(request) or "/",
            # This page's query minus the last action's notice, for forms to come back to.
            query=urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "notice"]
            ),
            now=datetime.now(UTC),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def error(self, request: Request, message: str, status_code: int) -> Response:
        return self.page(request, "error.html", status_code=status_code, message=message)
