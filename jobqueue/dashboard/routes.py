"""The dashboard's pages (GET) and actions (POST), each a thin layer over :class:`Admin`.

Database calls block, so GET pages are plain functions (Starlette runs them in its thread
pool) and actions hand their Admin call to the pool after reading the form. Every action goes
through :func:`action`, which refuses it in read-only mode and without a valid CSRF token, so
no POST route can forget either check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import structlog
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from jobqueue import metrics
from jobqueue.admin import Admin, NotFoundError
from jobqueue.dashboard.chart import throughput_chart
from jobqueue.dashboard.security import CSRF_FIELD, Security, prefix, safe_next
from jobqueue.queue import JobQueue
from jobqueue.schedule import RecurringTask
from jobqueue.schema import CANCELLED, FAILED, STATUSES
from jobqueue.serialization import decode_arguments

log = structlog.get_logger("jobqueue.dashboard")

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


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
            here=request.url.path[len(base) :] or "/",
            query=request.url.query,
            now=datetime.now(UTC),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def error(self, request: Request, message: str, status_code: int) -> Response:
        return self.page(request, "error.html", status_code=status_code, message=message)


def _redirect(request: Request, target: str, notice: str) -> Response:
    separator = "&" if "?" in target else "?"
    url = f"{prefix(request)}{target}{separator}{urlencode({'notice': notice})}"
    return RedirectResponse(url, status_code=303)


def _ids(form: FormData) -> list[str]:
    return [value for value in form.getlist("ids") if isinstance(value, str) and value]


def action(
    dashboard: Dashboard, handler: Callable[[Dashboard, Request, FormData], Response]
) -> Callable[[Request], Any]:
    """A POST endpoint: read-only mode and a bad CSRF token get 403 before ``handler`` runs."""

    async def endpoint(request: Request) -> Response:
        if dashboard.read_only:
            return PlainTextResponse("the dashboard is read-only", status_code=403)
        form = await request.form()
        if not dashboard.security.csrf_ok(request, form):
            return PlainTextResponse(
                "missing or invalid CSRF token: reload the page and try again", status_code=403
            )
        try:
            return await run_in_threadpool(handler, dashboard, request, form)
        except NotFoundError as error:
            return dashboard.error(request, str(error), 404)
        except ValueError as error:
            return dashboard.error(request, str(error), 400)

    return endpoint


# -- pages ------------------------------------------------------------------------------------


def overview(dashboard: Dashboard, request: Request) -> Response:
    admin = dashboard.admin
    minutes = admin.throughput(minutes=60)
    return dashboard.page(
        request,
        "overview.html",
        nav="overview",
        queues=admin.queues(),
        stats=admin.stats(minutes=60),
        chart=throughput_chart(minutes),
        processes=len(admin.processes()),
    )


def _filters(request: Request, nav: str) -> dict[str, str]:
    params = request.query_params
    found = {key: params[key] for key in ("status", "queue", "name") if params.get(key)}
    return {**found, "status": FAILED} if nav == "failed" else found


def jobs(dashboard: Dashboard, request: Request, nav: str = "jobs") -> Response:
    filters = _filters(request, nav)
    if filters.get("status") not in (None, *STATUSES):
        return dashboard.error(request, f"unknown status {filters['status']!r}", 400)
    try:
        limit = min(max(int(request.query_params.get("limit", PAGE_SIZE)), 1), MAX_PAGE_SIZE)
    except ValueError:
        return dashboard.error(request, "limit must be a number", 400)
    before = request.query_params.get("before") or None
    # One more than the page: whether a next page exists, without counting the table.
    found = dashboard.admin.list_jobs(limit=limit + 1, before=before, **filters)
    rows, more = found[:limit], len(found) > limit
    shown = {k: v for k, v in filters.items() if nav != "failed" or k != "status"}
    next_query = urlencode({**shown, "before": rows[-1].id}) if more and rows else None
    return dashboard.page(
        request,
        "jobs.html",
        nav=nav,
        jobs=rows,
        filters=filters,
        statuses=STATUSES,
        # Suggestions only: the queues the counters know (a tiny table), not a scan of jobs.
        queues=list(dashboard.admin.totals()),
        before=before,
        next_query=next_query,
        first_query=urlencode(shown),
        selectable=filters.get("status") in (FAILED, CANCELLED),
    )


def failed(dashboard: Dashboard, request: Request) -> Response:
    """The failed jobs: the jobs list fixed to failed, with bulk retry and discard."""
    return jobs(dashboard, request, nav="failed")


def job_detail(dashboard: Dashboard, request: Request) -> Response:
    job_id = request.path_params["job_id"]
    try:
        job = dashboard.admin.get_job(job_id)
    except NotFoundError as error:
        return dashboard.error(request, str(error), 404)
    try:
        args, kwargs = decode_arguments(job.args_json)
        arguments = json.dumps({"args": args, "kwargs": kwargs}, indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        arguments = job.args_json  # shown as stored: an undecodable row is worth seeing
    return dashboard.page(
        request, "job.html", nav="jobs", job=job, arguments=arguments, error=_error(job.last_error)
    )


@dataclass(frozen=True)
class ShownError:
    summary: str  # "module.Class: message"
    traceback: str


def _error(last_error: str | None) -> ShownError | None:
    """``last_error`` as the worker writes it (JSON: type, message, traceback), or as stored
    when it is not that shape."""
    if not last_error:
        return None
    try:
        data = json.loads(last_error)
        summary = f"{data['type']}: {data['message']}"
        return ShownError(summary, str(data.get("traceback") or ""))
    except (ValueError, TypeError, KeyError):
        return ShownError(last_error, "")


def processes(dashboard: Dashboard, request: Request) -> Response:
    return dashboard.page(
        request, "processes.html", nav="processes", processes=dashboard.admin.processes()
    )


def recurring(dashboard: Dashboard, request: Request) -> Response:
    from jobqueue.schedule import Scheduler

    tasks = list(dashboard.recurring())
    next_runs = Scheduler(dashboard.jobqueue, tasks).next_runs()
    return dashboard.page(
        request, "recurring.html", nav="recurring", tasks=tasks, next_runs=next_runs
    )


def metrics_page(dashboard: Dashboard, request: Request) -> Response:
    return Response(metrics.render(dashboard.metrics_registry), media_type=metrics.CONTENT_TYPE)


def login_form(dashboard: Dashboard, request: Request) -> Response:
    return dashboard.page(
        request, "login.html", nav="", next=safe_next(request.query_params.get("next"))
    )


async def login(dashboard: Dashboard, request: Request) -> Response:
    """The login form's POST: CSRF-checked like every other, then the token itself."""
    form = await request.form()
    if not dashboard.security.csrf_ok(request, form):
        return PlainTextResponse("missing or invalid CSRF token", status_code=403)
    token = form.get("token")
    target = safe_next(form.get("next"))
    if not isinstance(token, str) or not dashboard.security.token_matches(token):
        log.warning(
            "dashboard_login_failed", client=request.client.host if request.client else None
        )
        return dashboard.page(
            request, "login.html", status_code=401, nav="", next=target, failed=True
        )
    response = RedirectResponse(prefix(request) + target, status_code=303)
    return dashboard.security.log_in(response, request)


# -- actions ----------------------------------------------------------------------------------


def _back(form: FormData, default: str) -> str:
    return safe_next(form.get("next"), default)


def retry_job(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    job_id = request.path_params["job_id"]
    moved = dashboard.admin.retry([job_id])
    notice = f"job {job_id} retried" if moved else f"job {job_id} is not failed or cancelled"
    return _redirect(request, _back(form, f"/jobs/{job_id}"), notice)


def discard_job(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    job_id = request.path_params["job_id"]
    deleted = dashboard.admin.discard([job_id])
    if deleted:
        log.info("job_discarded_by_operator", job_id=job_id)
        return _redirect(request, _back(form, "/failed"), f"job {job_id} discarded")
    return _redirect(request, f"/jobs/{job_id}", f"job {job_id} is not failed or cancelled")


def cancel_job(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    job_id = request.path_params["job_id"]
    result = dashboard.admin.cancel([job_id])
    if result.cancelled:
        notice = f"job {job_id} cancelled"
    elif result.requested:
        notice = f"job {job_id} asked to stop"
    else:
        notice = f"job {job_id} had already finished"
    return _redirect(request, _back(form, f"/jobs/{job_id}"), notice)


def bulk_retry(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    """Retry the ticked jobs, or with ``all=1`` every failed job (of ``queue`` if given)."""
    if form.get("all"):
        queue = form.get("queue")
        moved = dashboard.admin.retry_all_failed(
            queue=queue if isinstance(queue, str) and queue else None
        )
    else:
        ids = _ids(form)
        if not ids:
            return _redirect(request, _back(form, "/failed"), "no job selected")
        moved = dashboard.admin.retry(ids)
    return _redirect(request, _back(form, "/failed"), f"{len(moved)} job(s) retried")


def bulk_discard(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    ids = _ids(form)
    if not ids:
        return _redirect(request, _back(form, "/failed"), "no job selected")
    deleted = dashboard.admin.discard(ids)
    for job_id in deleted:
        log.info("job_discarded_by_operator", job_id=job_id)
    return _redirect(request, _back(form, "/failed"), f"{len(deleted)} job(s) discarded")


def pause_queue(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    queue = request.path_params["queue"]
    changed = dashboard.admin.pause(queue)
    notice = f"queue {queue} paused" if changed else f"queue {queue} was already paused"
    return _redirect(request, _back(form, "/"), notice)


def resume_queue(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    queue = request.path_params["queue"]
    changed = dashboard.admin.resume(queue)
    notice = f"queue {queue} resumed" if changed else f"queue {queue} was not paused"
    return _redirect(request, _back(form, "/"), notice)


def routes(dashboard: Dashboard) -> list[Route]:
    def get(handler: Callable[[Dashboard, Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            return handler(dashboard, request)

        return endpoint

    async def login_endpoint(request: Request) -> Response:
        return await login(dashboard, request)

    post = ["POST"]
    return [
        Route("/", get(overview), name="overview"),
        Route("/jobs", get(jobs), name="jobs"),
        Route("/failed", get(failed), name="failed"),
        Route("/jobs/{job_id}", get(job_detail), name="job"),
        Route("/processes", get(processes), name="processes"),
        Route("/recurring", get(recurring), name="recurring"),
        Route("/metrics", get(metrics_page), name="metrics"),
        Route("/login", get(login_form), name="login_form"),
        Route("/login", login_endpoint, name="login", methods=post),
        Route("/jobs/{job_id}/retry", action(dashboard, retry_job), methods=post),
        Route("/jobs/{job_id}/discard", action(dashboard, discard_job), methods=post),
        Route("/jobs/{job_id}/cancel", action(dashboard, cancel_job), methods=post),
        Route("/failed/retry", action(dashboard, bulk_retry), methods=post),
        Route("/failed/discard", action(dashboard, bulk_discard), methods=post),
        Route("/queues/{queue:path}/pause", action(dashboard, pause_queue), methods=post),
        Route("/queues/{queue:path}/resume", action(dashboard, resume_queue), methods=post),
    ]
