"""The dashboard's pages and actions on every backend, through Starlette's TestClient.

Jobs are enqueued and run for real (``jobqueue.testing.drain`` goes through the worker's claim,
run and fenced write), so failed jobs carry real tracebacks and the counters real outcomes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from jobqueue import JobCall, JobQueue, iterate, job, step
from jobqueue.dashboard import create_app
from jobqueue.recurring import RecurringTask
from jobqueue.testing import drain

from browser import LOCAL

pytestmark = pytest.mark.backend

IDS = re.compile(r'<tr data-id="([0-9A-Z]{26})"')


@job(name="dash.ok")
def ok(value: object = None) -> None:
    """Succeeds."""


@job(name="dash.broken", max_attempts=1)
def broken(value: object = None) -> None:
    raise RuntimeError(f"broken on {value!r}")


def failed_jobs(jq: JobQueue, count: int, queue: str = "default") -> list[str]:
    """``count`` jobs that really ran and failed for good, oldest first."""
    handles = jq.enqueue_many(
        [JobCall("dash.broken", args=(n,), queue=queue, max_attempts=1) for n in range(count)]
    )
    drain(jq)
    return [handle.id for handle in handles]


def listed(response_text: str) -> list[str]:
    return IDS.findall(response_text)


def test_overview_shows_each_queue_and_the_last_hour(jq: JobQueue, client: TestClient) -> None:
    jq.enqueue_many([JobCall("dash.ok", queue="mail") for _ in range(3)])
    drain(jq)
    failed_jobs(jq, 2, queue="images")
    jq.enqueue_many([JobCall("dash.ok", queue="mail") for _ in range(4)])
    jq.admin.pause("images")

    page = client.get("/")
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-queue="([^"]+)">(.*?)</tr>', page.text, re.S))
    assert set(rows) == {"mail", "images"}
    cells = lambda queue: re.findall(r'<td class="num">(?:<a[^>]*>)?([^<]*)', rows[queue])  # noqa: E731
    assert cells("mail")[:4] == ["4", "4", "0", "0"]  # pending, due, running, failed
    assert cells("images")[3] == "2"
    assert "paused" in rows["images"] and "Resume" in rows["images"]
    assert "Pause" in rows["mail"]
    # The chart has a bar for each minute the jobs ran in: 3 succeeded and 2 failed in all
    # (one bar, or two when the run crossed a minute boundary, as it once did in CI).
    assert 'id="throughput"' in page.text
    bars = re.findall(r"<title>\d\d:\d\d UTC: (\d+) succeeded, (\d+) failed</title>", page.text)
    assert [sum(int(bar[i]) for bar in bars) for i in (0, 1)] == [3, 2], bars


def test_jobs_filter_by_status_queue_and_name(jq: JobQueue, client: TestClient) -> None:
    failed = failed_jobs(jq, 2, queue="mail")
    mail = [h.id for h in jq.enqueue_many([JobCall("dash.ok", queue="mail") for _ in range(3)])]
    other = jq.enqueue_many([JobCall("dash.other", queue="mail")])[0].id

    def ids(query: str) -> set[str]:
        response = client.get(f"/jobs?{query}")
        assert response.status_code == 200, response.text
        return set(listed(response.text))

    assert ids("status=failed&queue=mail") == set(failed)
    assert ids("status=pending&queue=mail&name=dash.ok") == set(mail)
    assert ids("name=dash.other") == {other}
    assert ids("queue=default") == set()
    assert client.get("/jobs?status=bogus").status_code == 400


def test_jobs_pages_with_keyset_before_the_last_id(jq: JobQueue, client: TestClient) -> None:
    handles = jq.enqueue_many([JobCall("dash.ok", args=(n,)) for n in range(7)])
    newest_first = [h.id for h in reversed(handles)]

    first = client.get("/jobs?limit=3")
    assert listed(first.text) == newest_first[:3]
    link = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert link, "a next-page link while older jobs remain"
    assert f"before={newest_first[2]}" in link.group(1)
    second = client.get(html.unescape(link.group(1)).replace("before", "limit=3&before"))
    assert listed(second.text) == newest_first[3:6]
    last = client.get(f"/jobs?limit=3&before={newest_first[5]}")
    assert listed(last.text) == newest_first[6:]
    assert 'id="next-page"' not in last.text


def test_job_detail_shows_arguments_attempts_and_traceback(
    jq: JobQueue, client: TestClient
) -> None:
    (job_id,) = failed_jobs(jq, 1)
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "dash.broken" in text
    assert '"args": [\n    0\n  ]' in text
    assert "1 run; 1 failed of 1 allowed" in text
    assert "<strong>builtins.RuntimeError: broken on 0</strong>" in text
    assert "Traceback (most recent call last)" in text
    assert client.get("/jobs/01ZZZZZZZZZZZZZZZZZZZZZZZZ").status_code == 404


def test_job_detail_shows_the_result_escaped(jq: JobQueue, client: TestClient) -> None:
    @job(name="dash.returns")
    def returns(text: str) -> dict[str, str]:
        return {"html": text}

    handle = returns.using(jobqueue=jq).enqueue("<b>bold</b>")
    drain(jq)
    page = client.get(f"/jobs/{handle.id}")
    assert page.status_code == 200
    assert "<b>bold</b>" not in page.text
    result = re.search(r'<pre id="result">(.*?)</pre>', page.text, re.S)
    assert result is not None and html.unescape(result.group(1)) == '{"html":"<b>bold</b>"}'


def test_job_detail_lists_the_steps_escaped(jq: JobQueue, client: TestClient) -> None:
    @job(name="dash.stepped", max_attempts=1)
    def stepped() -> None:
        step("<b>fetch</b>", lambda: [1, 2, 3])
        for item in iterate("walk", lambda cursor: range(5), key=lambda i: i, every=2):
            if item == 3:
                raise RuntimeError("stopped mid-walk")

    plain = jq.enqueue_many([JobCall("dash.ok")])[0].id
    handle = stepped.using(jobqueue=jq).enqueue()
    drain(jq)
    assert 'id="steps"' not in client.get(f"/jobs/{plain}").text  # no steps, no table
    page = client.get(f"/jobs/{handle.id}")
    assert page.status_code == 200
    assert "<b>fetch</b>" not in page.text
    table = re.search(r'<table id="steps">(.*?)</table>', page.text, re.S)
    assert table is not None
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", table.group(1))
    assert headers == ["Name", "Attempt", "Recorded", "State", "Size"]
    rows = [
        [html.unescape(cell.strip()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[1:]
    ]
    assert [row[:2] + row[3:] for row in rows] == [
        ["<b>fetch</b>", "1", "done", "7 B"],  # [1,2,3]
        ["walk", "1", "in progress", "1 B"],  # the cursor saved after items 0 and 1
    ]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[2]) for row in rows), rows


def test_arguments_and_errors_are_escaped(jq: JobQueue, client: TestClient) -> None:
    payload = "<script>alert('x')</script>"
    (job_id,) = [
        h.id for h in jq.enqueue_many([JobCall("dash.broken", args=(payload,), max_attempts=1)])
    ]
    drain(jq)
    jq.enqueue_many([JobCall(payload, queue=payload)])  # a name and a queue are data too
    for url in (f"/jobs/{job_id}", "/jobs", "/", "/failed"):
        page = client.get(url)
        assert page.status_code == 200
        assert "<script>" not in page.text, url
    detail = client.get(f"/jobs/{job_id}").text
    assert "&lt;script&gt;alert(" in detail  # in the arguments and in the error message
    assert detail.count("&lt;script&gt;") >= 2


def test_retry_a_failed_job_and_it_runs_again(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    (job_id,) = failed_jobs(jq, 1)
    response = client.post(
        f"/jobs/{job_id}/retry", data={"csrf_token": csrf(client)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/jobs/{job_id}?notice=")
    assert jq.get_job(job_id).status == "pending"  # type: ignore[union-attr]
    assert drain(jq)["failed"] == 1  # it really runs again (and fails again: it is broken)
    assert jq.get_job(job_id).attempts == 2  # type: ignore[union-attr]


def test_bulk_retry_and_discard_of_selected_jobs(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    first, second, third = failed_jobs(jq, 3)
    token = csrf(client)
    retried = client.post("/failed/retry", data={"csrf_token": token, "ids": [first, second]})
    assert retried.status_code == 200 and "2 job(s) retried" in retried.text
    assert {jq.get_job(i).status for i in (first, second)} == {"pending"}  # type: ignore[union-attr]
    discarded = client.post("/failed/discard", data={"csrf_token": token, "ids": [third]})
    assert "1 job(s) discarded" in discarded.text
    assert jq.get_job(third) is None
    assert jq.get_job(first) is not None


def test_retry_all_failed_of_one_queue(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    mail = failed_jobs(jq, 2, queue="mail")
    (other,) = failed_jobs(jq, 1, queue="images")
    response = client.post(
        "/failed/retry", data={"csrf_token": csrf(client), "all": "1", "queue": "mail"}
    )
    assert "2 job(s) retried" in response.text
    assert {jq.get_job(i).status for i in mail} == {"pending"}  # type: ignore[union-attr]
    assert jq.get_job(other).status == "failed"  # type: ignore[union-attr]


def test_cancel_a_pending_job(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    job_id = jq.enqueue_many([JobCall("dash.ok")])[0].id
    client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf(client)})
    assert jq.get_job(job_id).status == "cancelled"  # type: ignore[union-attr]


def test_pause_and_resume_a_queue(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    jq.enqueue_many([JobCall("dash.ok", queue="mail/eu")])
    token = csrf(client)
    page = client.post("/queues/mail/eu/pause", data={"csrf_token": token})
    assert "queue mail/eu paused" in page.text
    assert [q.paused for q in jq.admin.queues()] == [True]
    assert drain(jq) == {}  # workers claim nothing from a paused queue
    client.post("/queues/mail/eu/resume", data={"csrf_token": token})
    assert [q.paused for q in jq.admin.queues()] == [False]
    assert drain(jq)["succeeded"] == 1


POSTS = [
    "/jobs/{id}/retry",
    "/jobs/{id}/discard",
    "/jobs/{id}/cancel",
    "/batches/{id}/cancel",
    "/failed/retry",
    "/failed/discard",
    "/queues/default/pause",
    "/queues/default/resume",
    "/queues/default/clear",
    "/login",
]


def test_every_post_route_is_covered_here(client: TestClient) -> None:
    """The CSRF and read-only tests below list the POST routes; a new one must join them."""
    app = client.app
    paths = {
        route.path.replace("{job_id}", "{id}")  # type: ignore[attr-defined]
        .replace("{batch_id}", "{id}")
        .replace("{queue:path}", "default")
        for route in app.routes  # type: ignore[attr-defined]
        if "POST" in (getattr(route, "methods", None) or ())
    }
    assert paths == set(POSTS)


@pytest.mark.parametrize("path", POSTS)
def test_a_post_without_a_valid_csrf_token_is_refused(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient, path: str
) -> None:
    (job_id,) = failed_jobs(jq, 1)
    url = path.format(id=job_id)
    data = {"ids": [job_id], "all": "1"}
    assert client.post(url, data=data).status_code == 403
    assert client.post(url, data={**data, "csrf_token": "0" * 64}).status_code == 403
    # A token signed for another browser's nonce does not fit this browser's cookie.
    other = TestClient(client.app, base_url=LOCAL)
    assert client.post(url, data={**data, "csrf_token": csrf(other)}).status_code == 403
    assert jq.get_job(job_id).status == "failed"  # type: ignore[union-attr]
    assert jq.admin.queues()[0].paused is False


@pytest.mark.parametrize("path", [p for p in POSTS if p != "/login"])
def test_read_only_refuses_every_action_and_shows_no_buttons(
    csrf: Callable[[TestClient], str], jq: JobQueue, path: str
) -> None:
    (job_id,) = failed_jobs(jq, 1)
    with TestClient(create_app(jq, read_only=True, recurring=[]), base_url=LOCAL) as client:
        data = {"csrf_token": csrf(client), "ids": [job_id], "all": "1"}
        response = client.post(path.format(id=job_id), data=data)
        assert response.status_code == 403 and "read-only" in response.text
        assert jq.get_job(job_id).status == "failed"  # type: ignore[union-attr]
        for page in (f"/jobs/{job_id}", "/failed", "/"):
            assert 'method="post"' not in client.get(page).text


def test_processes_page_lists_live_processes(jq: JobQueue, client: TestClient) -> None:
    from jobqueue.runtime import lifecycle

    with jq.transaction() as connection:
        lifecycle.register(connection, process_id="01PROCESSPAGETEST000000000", kind="worker")
    page = client.get("/processes")
    assert "01PROCESSPAGETEST000000000" in page.text and "worker" in page.text


def test_recurring_page_shows_the_next_run(jq: JobQueue) -> None:
    task = RecurringTask(key="nightly", cron="0 3 * * *", job_name="dash.ok")
    with TestClient(create_app(jq, recurring=[task]), base_url=LOCAL) as client:
        page = client.get("/recurring").text
    now = datetime.now(UTC)
    next_run = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if next_run <= now:
        next_run += timedelta(days=1)
    assert "nightly" in page and "0 3 * * *" in page
    assert next_run.strftime("%Y-%m-%d %H:%M:%S UTC") in page


def test_mounted_under_a_prefix_links_and_redirects_keep_it(jq: JobQueue) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    (job_id,) = failed_jobs(jq, 1)
    host = Starlette(routes=[Mount("/ops/jobs", app=create_app(jq, recurring=[]))])
    with TestClient(host, base_url=LOCAL) as client:
        page = client.get("/ops/jobs/failed").text
        assert f'href="/ops/jobs/jobs/{job_id}"' in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        response = client.post(
            f"/ops/jobs/jobs/{job_id}/retry", data={"csrf_token": token}, follow_redirects=False
        )
        assert response.headers["location"].startswith(f"/ops/jobs/jobs/{job_id}?")
    assert jq.get_job(job_id).status == "pending"  # type: ignore[union-attr]


def test_forms_come_back_to_the_page_without_the_last_notice(
    jq: JobQueue, client: TestClient
) -> None:
    failed_jobs(jq, 1, queue="mail")
    page = client.get("/failed?queue=mail&notice=1+job%28s%29+retried").text
    backs = set(re.findall(r'name="next" value="([^"]+)"', page))
    assert backs == {"/failed?queue=mail"}
    assert '<div class="notice" role="status">1 job(s) retried</div>' in page


def test_mounted_in_a_wsgi_app_through_a2wsgi(jq: JobQueue) -> None:
    """What docs/dashboard.md tells Flask and Django users to do: the same app behind an
    ASGI-to-WSGI adapter, under a prefix (SCRIPT_NAME)."""
    import httpx
    from a2wsgi import ASGIMiddleware

    (job_id,) = failed_jobs(jq, 1)
    wsgi = ASGIMiddleware(create_app(jq, recurring=[]))  # type: ignore[arg-type]

    def mounted(environ: dict[str, Any], start_response: Any) -> Any:
        """A WSGI host routing /ops/* to the dashboard, as werkzeug's DispatcherMiddleware
        does: the prefix moves from PATH_INFO to SCRIPT_NAME."""
        path = environ["PATH_INFO"]
        assert path.startswith("/ops/")
        return wsgi({**environ, "SCRIPT_NAME": "/ops", "PATH_INFO": path[4:]}, start_response)

    transport = httpx.WSGITransport(app=mounted)
    with httpx.Client(transport=transport, base_url=LOCAL) as client:
        page = client.get("/ops/failed").text
        assert f'href="/ops/jobs/{job_id}"' in page
        assert 'name="next" value="/failed"' in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        response = client.post(f"/ops/jobs/{job_id}/retry", data={"csrf_token": token})
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"/ops/jobs/{job_id}?notice=")
    assert jq.get_job(job_id).status == "pending"  # type: ignore[union-attr]


def test_a_queue_name_with_dot_segments_pauses_only_itself(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    """Every path segment made of data is quoted whole: a queue named like a path cannot point
    its Pause button at another queue (the browser would resolve "a/../../queues/victim")."""
    tricky = "a/../../queues/victim"
    jq.enqueue_many([JobCall("dash.ok", queue=name) for name in (tricky, "victim")])
    rows = dict(re.findall(r'<tr data-queue="([^"]+)">(.*?)</tr>', client.get("/").text, re.S))
    action = re.search(r'action="([^"]+)"', rows[tricky])
    assert action and action.group(1) == "/queues/a%2F..%2F..%2Fqueues%2Fvictim/pause"
    token = csrf(client)
    assert client.post(action.group(1), data={"csrf_token": token}).status_code == 200
    assert [q.queue for q in jq.admin.queues() if q.paused] == [tricky]
    rows = dict(re.findall(r'<tr data-queue="([^"]+)">(.*?)</tr>', client.get("/").text, re.S))
    resume = re.search(r'action="([^"]+)"', rows[tricky])
    assert resume and resume.group(1) == "/queues/a%2F..%2F..%2Fqueues%2Fvictim/resume"
    client.post(resume.group(1), data={"csrf_token": token})
    assert [q.queue for q in jq.admin.queues() if q.paused] == []


def test_list_pages_read_only_the_columns_they_show(jq: JobQueue, client: TestClient) -> None:
    """500 rows of large arguments, errors and results must not be read to show ids and
    names: the lists' queries select none of those columns."""
    heavy = "x" * 100_000
    ids = failed_jobs(jq, 3)
    jq.enqueue_many([JobCall("dash.ok", args=(heavy,)) for _ in range(3)])
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(jq.engine, "before_cursor_execute", capture)
    try:
        pages = [client.get(url) for url in ("/jobs?limit=500", "/failed?limit=500")]
    finally:
        event.remove(jq.engine, "before_cursor_execute", capture)
    assert [page.status_code for page in pages] == [200, 200]
    assert len(listed(pages[0].text)) == 6 and set(listed(pages[1].text)) == set(ids)
    assert heavy not in pages[0].text
    lists = [s for s in statements if re.search(r"FROM\s+job_queue\b", s) and "ORDER BY" in s]
    assert len(lists) == 2, statements
    for statement in lists:
        selected = statement.split("FROM")[0]
        assert "job_queue.id" in selected and "job_queue.name" in selected
        for column in ("args", "last_error", "result", "unique_key"):
            assert not re.search(rf"\b{column}\b", selected), (column, statement)


def test_bad_input_gets_400_or_404_not_a_500(
    jq: JobQueue, client: TestClient, csrf: Callable[[TestClient], str]
) -> None:
    """NUL bytes (a PostgreSQL error if they reached it), over-long names and ids that cannot
    be job ids are answered as bad requests or unknown jobs, on every backend."""
    for path in ("/jobs/abc%00def", "/jobs/" + "Z" * 300, "/jobs/01ARZ3NDEKTSV4RRFFQ69G5FA%00"):
        assert client.get(path).status_code == 404, path
    for query in ("queue=a%00b", "name=x%00", "queue=" + "q" * 300, "before=%00"):
        assert client.get(f"/jobs?{query}").status_code == 400, query
    token = csrf(client)
    assert (
        client.post("/queues/" + "q" * 300 + "/pause", data={"csrf_token": token}).status_code
        == 400
    )
    page = client.post("/jobs/abc%00/retry", data={"csrf_token": token}, follow_redirects=False)
    assert page.status_code == 404
    assert jq.admin.queues() == []  # nothing was paused
