"""The dashboard's actions (POST), each one Admin call.

Every action goes through :func:`action`, which refuses it in read-only mode and without a
valid CSRF token before its handler runs, so no POST route can forget either check; the Admin
call then runs in the thread pool (it blocks on the database).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from jobqueue.admin import NotFoundError
from jobqueue.dashboard.batch_pages import not_found
from jobqueue.dashboard.context import Dashboard
from jobqueue.dashboard.security import prefix, safe_next
from jobqueue.queue_admin import check_queue


def _redirect(request: Request, target: str, notice: str) -> Response:
    separator = "&" if "?" in target else "?"
    url = f"{prefix(request)}{target}{separator}{urlencode({'notice': notice})}"
    return RedirectResponse(url, status_code=303)


def _ids(form: FormData) -> list[str]:
    return [value for value in form.getlist("ids") if isinstance(value, str) and value]


Handler = Callable[[Dashboard, Request, FormData], Response]


def action(dashboard: Dashboard, handler: Handler) -> Callable[[Request], Any]:
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


def _back(form: FormData, default: str) -> str:
    return safe_next(form.get("next"), default)


def _job_path(request: Request) -> tuple[str, str]:
    """The job id of this action's path, and its page (the id quoted as one segment)."""
    job_id: str = request.path_params["job_id"]
    return job_id, f"/jobs/{quote(job_id, safe='')}"


def retry_job(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    job_id, page = _job_path(request)
    moved = dashboard.admin.retry([job_id])
    notice = (
        f"job {job_id} retried" if moved else f"job {job_id} is not failed, cancelled or expired"
    )
    return _redirect(request, _back(form, page), notice)


def discard_job(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    job_id, page = _job_path(request)
    deleted = dashboard.admin.discard([job_id])
    if deleted:
        return _redirect(request, _back(form, "/failed"), f"job {job_id} discarded")
    return _redirect(request, page, f"job {job_id} is not failed, cancelled or expired")


def cancel_job(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    job_id, page = _job_path(request)
    result = dashboard.admin.cancel([job_id])
    if result.cancelled:
        notice = f"job {job_id} cancelled"
    elif result.requested:
        notice = f"job {job_id} asked to stop"
    else:
        notice = f"job {job_id} had already finished"
    return _redirect(request, _back(form, page), notice)


def cancel_batch(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    """Cancel a batch and its nested batches (:meth:`BatchAdmin.cancel`)."""
    batch_id: str = request.path_params["batch_id"]
    report = dashboard.admin.batches.cancel(batch_id)
    if report is None:
        return not_found(dashboard, request, batch_id)
    nested = len(report.batches) - 1
    also = f" and {nested} nested batch(es)" if nested else ""
    notice = (
        f"batch {batch_id}{also} cancelled: {len(report.cancelled)} job(s) cancelled, "
        f"{len(report.stopping)} running job(s) asked to stop"
    )
    return _redirect(request, _back(form, f"/batches/{quote(batch_id, safe='')}"), notice)


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


def clear_queue(dashboard: Dashboard, request: Request, form: FormData) -> Response:
    """Discard the queue's waiting jobs of the ticked statuses (:meth:`Admin.clear_queue`, the
    confirmation page's form). None ticked clears nothing; an unknown one is a 400 before any
    job is touched."""
    queue: str = request.path_params["queue"]
    check_queue(queue)  # a bad name is a 400 even when nothing is ticked
    ticked = [value for value in form.getlist("status") if isinstance(value, str)]
    if not ticked:
        page = f"/queues/{quote(queue, safe='')}/clear"
        return _redirect(request, page, "no status ticked: nothing cleared")
    cleared = dashboard.admin.clear_queue(queue, statuses=list(dict.fromkeys(ticked)))
    return _redirect(request, "/", f"cleared {cleared} job(s) from queue {queue}")
