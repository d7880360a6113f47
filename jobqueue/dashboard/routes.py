"""The dashboard's URL table: pages are GETs, actions POSTs (see :mod:`.actions`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobqueue.dashboard import actions, batch_pages, pages
from jobqueue.dashboard.context import Dashboard


def routes(dashboard: Dashboard) -> list[Route]:
    """Every route of the app, bound to ``dashboard``."""

    def get(handler: Callable[[Dashboard, Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            return handler(dashboard, request)

        return endpoint

    async def login_endpoint(request: Request) -> Response:
        return await pages.login(dashboard, request)

    def act(handler: actions.Handler) -> Callable[[Request], Any]:
        return actions.action(dashboard, handler)

    post = ["POST"]
    return [
        Route("/", get(pages.overview), name="overview"),
        Route("/jobs", get(pages.jobs), name="jobs"),
        Route("/failed", get(pages.failed), name="failed"),
        Route("/jobs/{job_id}", get(pages.job_detail), name="job"),
        Route("/batches", get(batch_pages.batch_list), name="batches"),
        Route("/batches/{batch_id}", get(batch_pages.batch_detail), name="batch"),
        Route("/processes", get(pages.processes), name="processes"),
        Route("/recurring", get(pages.recurring), name="recurring"),
        Route("/metrics", get(pages.metrics_page), name="metrics"),
        Route("/queues/{queue:path}/clear", get(pages.clear_queue_page), name="clear_queue"),
        Route("/login", get(pages.login_form), name="login_form"),
        Route("/login", login_endpoint, name="login", methods=post),
        Route("/jobs/{job_id}/retry", act(actions.retry_job), methods=post),
        Route("/jobs/{job_id}/discard", act(actions.discard_job), methods=post),
        Route("/jobs/{job_id}/cancel", act(actions.cancel_job), methods=post),
        Route("/batches/{batch_id}/cancel", act(actions.cancel_batch), methods=post),
        Route("/failed/retry", act(actions.bulk_retry), methods=post),
        Route("/failed/discard", act(actions.bulk_discard), methods=post),
        Route("/queues/{queue:path}/pause", act(actions.pause_queue), methods=post),
        Route("/queues/{queue:path}/resume", act(actions.resume_queue), methods=post),
        Route("/queues/{queue:path}/clear", act(actions.clear_queue), methods=post),
    ]
