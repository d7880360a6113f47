"""Clearing a queue from the dashboard on every backend, through Starlette's TestClient: the
overview's "Clear…" link, the confirmation page with the counts of ``Admin.clearable`` and a box
per status, and its POST, guarded like every action, which clears only the ticked statuses."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from jobqueue import JobQueue, job
from jobqueue.dashboard import create_app
from jobqueue.runtime import lifecycle
from jobqueue.schema import BLOCKED, PENDING, RUNNING
from jobqueue.store import claims

from browser import LOCAL

pytestmark = pytest.mark.backend

ROWS = re.compile(r'<tr data-status="(\w+)">(.*?)</tr>', re.S)
BOXES = re.compile(r'<input type="checkbox" id="status-\w+" name="status" value="(\w+)"[^>]*>')
NOTHING = {"pending": 0, "scheduled": 0, "blocked": 0}


@job(name="dash.clear_work", queue="bulk")
def work(label: str = "") -> None:
    """Waits in "bulk" until cleared (nothing runs it here)."""


@job(name="dash.clear_other", queue="other")
def other(label: str = "") -> None:
    """Waits in "other", which no clear of "bulk" touches."""


@job(name="dash.clear_limited", queue="bulk", concurrency_limit=1, concurrency_key="clear")
def limited(label: str = "") -> None:
    """One at a time: jobs of a key wait as blocked until the claim starts them."""


def status(jq: JobQueue, job_id: str) -> str | None:
    record = jq.get_job(job_id)
    return record.status if record is not None else None


def shown_counts(page_text: str) -> dict[str, int]:
    """{status: the count in its row} of the confirmation page's table."""
    counts = {}
    for name, row in ROWS.findall(page_text):
        cells = re.findall(r'<td class="num">(\d+)</td>', row)
        assert len(cells) == 1, row
        counts[name] = int(cells[0])
    return counts


def claim_one(jq: JobQueue, queue: str) -> str:
    """A worker takes one job of ``queue``: it is running, and no clear may touch it."""
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id="clear-test", kind="worker")
        (claimed,) = claims.claim_jobs(
            connection, process_id="clear-test", queues=[queue], limit=1, now=datetime.now(UTC)
        )
    return claimed.id


def test_the_overview_links_to_a_page_showing_the_counts(jq: JobQueue, client: TestClient) -> None:
    for n in range(3):
        work.enqueue(n)
    for n in range(2):
        work.enqueue_in(timedelta(hours=1), f"later-{n}")
    holder, blocked = limited.enqueue("holder"), limited.enqueue("blocked")
    assert (status(jq, holder.id), status(jq, blocked.id)) == (BLOCKED, BLOCKED)
    other.enqueue("elsewhere")

    overview = client.get("/").text
    rows = dict(re.findall(r'<tr data-queue="([^"]+)">(.*?)</tr>', overview, re.S))
    assert '<a class="clear-link" href="/queues/bulk/clear">Clear…</a>' in rows["bulk"]
    assert '<a class="clear-link" href="/queues/other/clear">Clear…</a>' in rows["other"]

    page = client.get("/queues/bulk/clear")
    assert page.status_code == 200
    assert '<span class="mono" id="queue">bulk</span>' in page.text
    assert shown_counts(page.text) == {"pending": 3, "scheduled": 2, "blocked": 2}
    assert shown_counts(page.text) == jq.admin.clearable("bulk")
    boxes = BOXES.findall(page.text)
    assert boxes == ["pending", "scheduled", "blocked"]
    assert all(" checked>" in box for box in re.findall(r'<input type="checkbox"[^>]*>', page.text))
    assert "cannot be undone" in page.text
    assert 'action="/queues/bulk/clear"' in page.text
    assert re.search(
        r'<form id="clear" method="post"[^>]*>\s*<input type="hidden" '
        r'name="csrf_token" value="[0-9a-f]+">',
        page.text,
    )
    assert '<button type="submit" class="danger" id="discard">Discard 7 jobs</button>' in page.text
    empty = client.get("/queues/nothing-here/clear")
    assert empty.status_code == 200 and shown_counts(empty.text) == NOTHING
    assert "Discard 0 jobs" in empty.text


def test_a_post_clears_only_the_ticked_statuses_of_that_queue(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    work.enqueue("running")
    running = claim_one(jq, "bulk")
    due = [work.enqueue(n).id for n in range(3)]
    later = [work.enqueue_in(timedelta(hours=1), n).id for n in range(2)]
    holder, blocked = limited.enqueue("holder").id, limited.enqueue("blocked").id
    elsewhere = [other.enqueue(n).id for n in range(2)]
    token = csrf(client)

    response = client.post(
        "/queues/bulk/clear",
        data={"csrf_token": token, "status": ["scheduled", "blocked"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/?notice=")
    assert unquote(location.replace("+", " ")).endswith("cleared 4 job(s) from queue bulk")
    shown = client.get(location).text
    assert '<div class="notice" role="status">cleared 4 job(s) from queue bulk</div>' in shown
    assert [status(jq, i) for i in [*later, holder, blocked]] == [None, None, None, None]
    assert {status(jq, i) for i in due} == {PENDING}

    # The page's default: every box ticked, of which only "pending" still finds jobs.
    everything = {"csrf_token": token, "status": ["pending", "scheduled", "blocked"]}
    cleared = client.post("/queues/bulk/clear", data=everything)
    assert cleared.status_code == 200 and cleared.url.path == "/"
    assert "cleared 3 job(s) from queue bulk" in cleared.text
    assert jq.admin.clearable("bulk") == NOTHING
    assert status(jq, running) == RUNNING
    assert {status(jq, i) for i in elsewhere} == {PENDING}
    assert jq.admin.clearable("other") == {**NOTHING, "pending": 2}


def test_without_a_valid_csrf_token_nothing_is_cleared(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    waiting = [work.enqueue(n).id for n in range(2)]
    data = {"status": ["pending", "scheduled", "blocked"]}
    assert client.post("/queues/bulk/clear", data=data).status_code == 403
    wrong = {**data, "csrf_token": "0" * 64}
    assert client.post("/queues/bulk/clear", data=wrong).status_code == 403
    other_browser = TestClient(client.app, base_url=LOCAL)
    theirs = {**data, "csrf_token": csrf(other_browser)}
    assert client.post("/queues/bulk/clear", data=theirs).status_code == 403
    assert {status(jq, i) for i in waiting} == {PENDING}


def test_read_only_refuses_and_the_page_shows_no_form(
    csrf: Callable[[TestClient], str], jq: JobQueue
) -> None:
    waiting = [work.enqueue(n).id for n in range(2)]
    with TestClient(create_app(jq, read_only=True, recurring=[]), base_url=LOCAL) as client:
        data = {"csrf_token": csrf(client), "status": ["pending"]}
        response = client.post("/queues/bulk/clear", data=data)
        assert response.status_code == 403 and "read-only" in response.text
        page = client.get("/queues/bulk/clear")
        assert page.status_code == 200
        assert "clearing a queue is not allowed" in page.text
        assert shown_counts(page.text) == {**NOTHING, "pending": 2}  # still shown
        for absent in ('method="post"', "<form", 'type="checkbox"', "csrf_token", "Discard "):
            assert absent not in page.text, absent
        assert "clear-link" not in client.get("/").text
    assert {status(jq, i) for i in waiting} == {PENDING}


def test_none_ticked_clears_nothing_and_an_unknown_status_is_a_400(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    waiting = [work.enqueue(n).id for n in range(2)]
    token = csrf(client)
    response = client.post("/queues/bulk/clear", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/queues/bulk/clear?notice=")
    back = client.get(response.headers["location"]).text
    assert '<div class="notice" role="status">no status ticked: nothing cleared</div>' in back
    assert shown_counts(back) == {**NOTHING, "pending": 2}
    for statuses in (["running"], ["pending", "bogus"], ["failed"], [""]):
        data = {"csrf_token": token, "status": statuses}
        refused = client.post("/queues/bulk/clear", data=data)
        assert refused.status_code == 400, statuses
        assert "cannot clear" in refused.text
    assert {status(jq, i) for i in waiting} == {PENDING}


def test_bad_queue_names_get_400_on_the_page_and_the_action(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    work.enqueue("stays")
    token = csrf(client)
    for name in ("q" * 300, "a%00b", "*"):
        assert client.get(f"/queues/{name}/clear").status_code == 400, name
        for data in ({"csrf_token": token}, {"csrf_token": token, "status": "pending"}):
            answer = client.post(f"/queues/{name}/clear", data=data, follow_redirects=False)
            assert answer.status_code == 400, (name, data)
    assert jq.admin.clearable("bulk") == {**NOTHING, "pending": 1}


def test_a_tricky_queue_name_is_escaped_and_clears_only_itself(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    """The name is shown as text, and quoted as one path segment in the link and the form,
    so a queue named like a path cannot point them at another queue."""
    tricky = "<script>alert(1)</script>/../../queues/victim"
    mine = [work.using(queue=tricky).enqueue(n).id for n in range(2)]
    victims = [work.using(queue="victim").enqueue(n).id for n in range(2)]
    quoted = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E%2F..%2F..%2Fqueues%2Fvictim"

    overview = client.get("/").text
    assert "<script>alert" not in overview
    assert f'href="/queues/{quoted}/clear"' in overview
    page = client.get(f"/queues/{quoted}/clear")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    shown = re.search(r'<span class="mono" id="queue">(.*?)</span>', page.text)
    assert shown is not None and html.unescape(shown.group(1)) == tricky
    assert shown_counts(page.text) == {**NOTHING, "pending": 2}
    action = re.search(r'<form id="clear" method="post" action="([^"]+)"', page.text)
    assert action is not None and action.group(1) == f"/queues/{quoted}/clear"

    data = {"csrf_token": csrf(client), "status": ["pending", "scheduled", "blocked"]}
    done = client.post(action.group(1), data=data)
    assert done.status_code == 200 and "<script>alert" not in done.text
    assert html.escape(f"cleared 2 job(s) from queue {tricky}", quote=False) in done.text
    assert [status(jq, i) for i in mine] == [None, None]
    assert {status(jq, i) for i in victims} == {PENDING}
