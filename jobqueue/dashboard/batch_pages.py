"""The batch pages (GET): the newest batches, and one batch with its members counted, its jobs
by status, its callbacks and its failed jobs; each a thin layer over :class:`BatchAdmin`.
Cancelling one is an action like the others (:func:`.actions.cancel_batch`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from jobqueue.dashboard.context import Dashboard
from jobqueue.schema import CANCELLED, FAILED, STATUSES

LIST_SIZE = 50
MAX_LIST_SIZE = 500
#: Failed and cancelled jobs shown on a batch's page, oldest first.
FAILED_SHOWN = 50


def not_found(dashboard: Dashboard, request: Request, batch_id: str) -> Response:
    message = f"no batch with id {batch_id!r} (never written, or pruned)"
    return dashboard.error(request, message, 404)


def batch_list(dashboard: Dashboard, request: Request) -> Response:
    """The newest batches first; ``?unfinished=1`` only those not finished yet."""
    unfinished = request.query_params.get("unfinished") == "1"
    try:
        limit = min(max(int(request.query_params.get("limit", LIST_SIZE)), 1), MAX_LIST_SIZE)
    except ValueError:
        return dashboard.error(request, "limit must be a number", 400)
    found = dashboard.admin.batches.newest(unfinished_only=unfinished, limit=limit)
    return dashboard.page(
        request, "batches.html", nav="batches", batches=found, unfinished=unfinished, limit=limit
    )


def batch_detail(dashboard: Dashboard, request: Request) -> Response:
    batch_id: str = request.path_params["batch_id"]
    admin = dashboard.admin.batches
    batch = admin.get(batch_id)
    if batch is None:
        return not_found(dashboard, request, batch_id)
    # The known statuses in their order, then any other the table holds (shown, not hidden).
    order = [s for s in STATUSES if s in batch.jobs] + sorted(set(batch.jobs) - set(STATUSES))
    return dashboard.page(
        request,
        "batch.html",
        nav="batches",
        batch=batch,
        jobs_by_status=[(status, batch.jobs[status]) for status in order],
        failed_jobs=admin.failed_jobs(batch_id, limit=FAILED_SHOWN),
        failed_count=batch.jobs.get(FAILED, 0) + batch.jobs.get(CANCELLED, 0),
    )
