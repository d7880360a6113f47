"""Listing jobs newest first with filters, on both of SQLite's plans (walking the primary key
for a common status or queue, or sorting the few matches of a rare one), on every backend, in
both widths: whole rows (``list_jobs``) and the dashboard's list columns (``list_summaries``)."""

from __future__ import annotations

import pytest

from jobqueue import JobCall, JobQueue
from jobqueue.store import listing
from jobqueue.store.listing import COMMON_ROWS

pytestmark = pytest.mark.backend


def test_common_and_rare_filters_page_through_the_same_jobs(jq: JobQueue) -> None:
    calls = [
        JobCall("dash.ok", queue="bulk" if n % 10 else "rare") for n in range(COMMON_ROWS + 400)
    ]
    handles = jq.enqueue_many(calls)
    jq.admin.cancel([h.id for h in handles[:5]])
    expected = {
        "queue=bulk": [h.id for h, c in zip(handles, calls, strict=True) if c.queue == "bulk"],
        "queue=rare": [h.id for h, c in zip(handles, calls, strict=True) if c.queue == "rare"],
        "status=pending": [h.id for h in handles[5:]],
        "status=cancelled": [h.id for h in handles[:5]],
    }
    with jq.transaction(read_only=True) as connection:
        assert listing._common(connection, "pending", None)
        assert listing._common(connection, None, "bulk")
        assert not listing._common(connection, None, "rare")
        assert not listing._common(connection, "cancelled", None)

    for key, ids in expected.items():
        field, value = key.split("=")
        seen: list[str] = []
        before = None
        while True:
            page = jq.admin.list_jobs(**{field: value}, limit=500, before=before)
            # The dashboard's narrow rows: the same jobs, in the same order, by the same plan.
            light = jq.admin.list_summaries(**{field: value}, limit=500, before=before)
            assert [(j.id, j.status, j.queue) for j in light] == [
                (j.id, j.status, j.queue) for j in page
            ]
            if not page:
                break
            seen.extend(job.id for job in page)
            before = page[-1].id
        assert seen == list(reversed(ids)), key
