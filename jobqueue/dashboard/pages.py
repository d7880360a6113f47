"""The dashboard's pages (GET), each a thin layer over :class:`Admin`.

Database calls block, so pages are plain functions: Starlette runs them in its thread pool.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from jobqueue import metrics
from jobqueue.admin import NotFoundError
from jobqueue.dashboard.chart import throughput_chart
from jobqueue.dashboard.context import Dashboard
from jobqueue.dashboard.security import prefix, safe_next
from jobqueue.schema import CANCELLED, EXPIRED, FAILED, STATUSES
from jobqueue.serialization import decode_arguments

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


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


def clear_queue_page(dashboard: Dashboard, request: Request) -> Response:
    """The confirmation before clearing a queue: what a clear would discard, by status, with a
    box for each (all ticked) and the form (:func:`.actions.clear_queue`), none when
    read-only."""
    queue: str = request.path_params["queue"]
    try:
        counts = dashboard.admin.clearable(queue)
    except ValueError as error:  # a name no queue can have (too long, a NUL byte)
        return dashboard.error(request, str(error), 400)
    return dashboard.page(
        request,
        "clear_queue.html",
        nav="overview",
        queue=queue,
        counts=counts,
        total=sum(counts.values()),
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
    # Only the columns the list shows: 500 rows of megabyte arguments would be 500 MB.
    try:
        found = dashboard.admin.list_summaries(
            status=filters.get("status"),
            queue=filters.get("queue"),
            name=filters.get("name"),
            limit=limit + 1,
            before=before,
        )
    except ValueError as error:  # a filter no job can match (too long, a NUL byte)
        return dashboard.error(request, str(error), 400)
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
        selectable=filters.get("status") in (FAILED, CANCELLED, EXPIRED),
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
        request,
        "job.html",
        nav="jobs",
        job=job,
        arguments=arguments,
        error=job.error,
        steps=dashboard.admin.job_steps(job_id),
    )


def processes(dashboard: Dashboard, request: Request) -> Response:
    return dashboard.page(
        request, "processes.html", nav="processes", processes=dashboard.admin.processes()
    )


def recurring(dashboard: Dashboard, request: Request) -> Response:
    tasks = list(dashboard.recurring())
    now = datetime.now(UTC)
    next_runs = {task.key: task.next_occurrence(now) for task in tasks}
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
    """The login form's POST: CSRF-checked like every other, refused (429) from an address
    that failed too often lately, then the token itself; a wrong one is logged and counted."""
    security = dashboard.security
    form = await request.form()
    if not security.csrf_ok(request, form):
        return PlainTextResponse("missing or invalid CSRF token", status_code=403)
    blocked = security.too_many_failures(request)
    if blocked is not None:
        return blocked
    token = form.get("token")
    target = safe_next(form.get("next"))
    if not isinstance(token, str) or not security.token_matches(token):
        security.auth_failed(request, "form")
        return dashboard.page(
            request, "login.html", status_code=401, nav="", next=target, failed=True
        )
    response = RedirectResponse(prefix(request) + target, status_code=303)
    return security.log_in(response, request)
