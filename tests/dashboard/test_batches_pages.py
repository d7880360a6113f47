"""The batch pages and the Cancel batch action on every backend, through Starlette's
TestClient: batches are written by ``with batch(...)`` and their jobs run for real by
``jobqueue.testing.drain``, so counters, callbacks and failed jobs are the real ones."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from jobqueue import Batch, JobQueue, batch, job
from jobqueue.dashboard import create_app
from jobqueue.testing import drain

from browser import LOCAL

pytestmark = pytest.mark.backend

ROWS = re.compile(r'<tr data-id="([0-9A-Z]{26})">(.*?)</tr>', re.S)


@job(name="dash.batch_ok")
def ok(value: object = None) -> None:
    """Succeeds."""


@job(name="dash.batch_broken", max_attempts=1)
def broken(value: object = None) -> None:
    raise RuntimeError(f"broken on {value!r}")


@job(name="dash.batch_callback")
def callback(kind: str) -> None:
    """A batch's callback: succeeds."""


def rows(page_text: str) -> dict[str, str]:
    """{id: the row's HTML} of a page's table rows that carry an id."""
    return dict(ROWS.findall(page_text))


def section(page_text: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:table|dl)>', page_text, re.S)
    assert found, (element_id, page_text)
    return found.group(1)


def cells(row_html: str) -> list[str]:
    """The text of each cell of a row, tags stripped and entities decoded."""
    found = re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in found]


def failed_batch(jq: JobQueue) -> tuple[Batch, list[str], str]:
    """A finished batch of two jobs that succeeded and one that failed, with all three
    callbacks configured (so on_complete and on_failure ran); and the failed job's id."""
    with batch(
        on_complete=callback.call("complete"),
        on_success=callback.call("success"),
        on_failure=callback.call("failure"),
        description="nightly import",
        jobqueue=jq,
    ) as b:
        done = [ok.enqueue(n).id for n in range(2)]
        bad = broken.enqueue("row 3").id
    drain(jq)
    return b, done, bad


def test_the_list_shows_batches_newest_first_and_filters_unfinished(
    jq: JobQueue, client: TestClient
) -> None:
    finished, _, _ = failed_batch(jq)
    with batch(description="resize photos", jobqueue=jq) as running:
        for n in range(3):
            ok.enqueue(n)

    page = client.get("/batches")
    assert page.status_code == 200
    assert '<a href="/batches" class="active">Batches</a>' in page.text  # in the navigation
    listed = rows(page.text)
    assert list(listed) == [running.id, finished.id]
    assert f'<a href="/batches/{running.id}">{running.id}</a>' in listed[running.id]
    shown = cells(listed[running.id])
    assert shown[1:5] + shown[6:] == ["running", "0/3", "0", "0", "resize photos"]
    assert '<progress value="0" max="3"' in listed[running.id]
    assert cells(listed[finished.id])[1:5] == ["failed", "3/3", "1", "0"]
    assert '<progress value="3" max="3"' in listed[finished.id]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", cells(listed[finished.id])[5])

    unfinished = client.get("/batches?unfinished=1")
    assert list(rows(unfinished.text)) == [running.id]
    assert '<option value="1" selected>' in unfinished.text
    assert client.get("/batches?limit=1").text.count("<tr data-id=") == 1
    assert client.get("/batches?limit=x").status_code == 400


def test_the_batch_page_shows_counts_callbacks_and_failed_jobs(
    jq: JobQueue, client: TestClient
) -> None:
    b, _, bad = failed_batch(jq)
    record = b.fetch()
    assert record is not None and len(record.callback_ids) == 2  # on_complete, on_failure

    page = client.get(f"/batches/{b.id}")
    assert page.status_code == 200
    assert re.search(
        r'<h1>Batch <span class="mono">\w+</span> <span class="badge failed">', page.text
    )
    assert '<dd id="description">nightly import</dd>' in page.text
    assert '<progress value="3" max="3"' in page.text
    assert 'id="parent"' not in page.text
    assert cells(section(page.text, "counters")) == ["3", "0", "2", "1", "0"]
    by_status = re.findall(r'<tr data-status="(\w+)">(.*?)</tr>', page.text, re.S)
    assert [(status, cells(row)[1]) for status, row in by_status] == [
        ("succeeded", "2"),
        ("failed", "1"),
    ]
    callbacks = section(page.text, "callbacks")
    assert "on_complete, on_success, on_failure" in callbacks
    links = re.findall(r'<a class="mono callback" href="/jobs/(\w+)">', callbacks)
    assert links == list(record.callback_ids)
    assert all(client.get(f"/jobs/{i}").status_code == 200 for i in links)
    failed = rows(section(page.text, "failed-jobs"))
    assert list(failed) == [bad]
    assert f'<a href="/jobs/{bad}">' in failed[bad]
    assert cells(failed[bad])[1:] == ["dash.batch_broken", "failed"]
    assert "Cancel batch" not in page.text  # finished: nothing to cancel
    # Each member's page leads back to its batch, each callback's to the batch it ran for.
    assert f'<a id="batch" href="/batches/{b.id}">' in client.get(f"/jobs/{bad}").text
    callback_page = client.get(f"/jobs/{links[0]}").text
    assert f'<a id="callback-of" href="/batches/{b.id}">' in callback_page


def test_a_nested_batch_links_its_parent_and_is_cancelled_with_it(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    with batch(on_success=callback.call("outer"), jobqueue=jq) as outer:
        ok.enqueue("outer")
        with batch(description="inner") as inner:
            ok.enqueue("inner")
    page = client.get(f"/batches/{inner.id}").text
    assert f'<a id="parent" href="/batches/{outer.id}">{outer.id}</a>' in page
    assert "Cancel batch" in page
    outer_page = client.get(f"/batches/{outer.id}").text
    assert cells(section(outer_page, "counters")) == ["2", "2", "0", "0", "0"]  # job + batch
    assert "not yet: once every member has finished" in section(outer_page, "callbacks")
    cancelled = client.post(f"/batches/{outer.id}/cancel", data={"csrf_token": csrf(client)})
    assert cancelled.status_code == 200 and cancelled.url.path == f"/batches/{outer.id}"
    notice = f"batch {outer.id} and 1 nested batch(es) cancelled: 2 job(s) cancelled"
    assert notice in cancelled.text


def test_a_waiting_job_shows_its_status_and_can_be_cancelled(
    jq: JobQueue, client: TestClient
) -> None:
    first = ok.using(jobqueue=jq).enqueue("first")
    waiting = ok.using(jobqueue=jq, depends_on=[first]).enqueue("second")
    page = client.get(f"/jobs/{waiting.id}").text
    assert '<span class="badge waiting">waiting</span>' in page
    assert "1 unfinished dependency" in page
    assert f'action="/jobs/{waiting.id}/cancel"' in page
    listed = client.get("/jobs?status=waiting").text
    assert '<option value="waiting" selected>' in listed
    assert rows(listed).keys() == {waiting.id}


def test_cancel_a_batch_with_a_csrf_token(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    with batch(on_complete=callback.call("complete"), jobqueue=jq) as b:
        members = [ok.enqueue(n).id for n in range(3)]
    page = client.get(f"/batches/{b.id}").text
    assert f'action="/batches/{b.id}/cancel"' in page and "Cancel batch" in page

    response = client.post(
        f"/batches/{b.id}/cancel", data={"csrf_token": csrf(client)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/batches/{b.id}?notice=")
    shown = client.get(response.headers["location"]).text
    notice = f"batch {b.id} cancelled: 3 job(s) cancelled, 0 running job(s) asked to stop"
    assert f'<div class="notice" role="status">{notice}</div>' in shown
    assert {jq.get_job(i).status for i in members} == {"cancelled"}  # type: ignore[union-attr]
    assert "Cancel batch" not in shown
    drain(jq)  # on_complete still runs, once
    record = b.fetch()
    assert record is not None and record.status == "cancelled" and record.cancelled == 3
    assert len(record.callback_ids) == 1


def test_cancel_without_a_valid_csrf_token_is_refused(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    with batch(jobqueue=jq) as b:
        member = ok.enqueue("x").id
    url = f"/batches/{b.id}/cancel"
    assert client.post(url).status_code == 403
    assert client.post(url, data={"csrf_token": "0" * 64}).status_code == 403
    other = TestClient(client.app, base_url=LOCAL)  # another browser's token
    assert client.post(url, data={"csrf_token": csrf(other)}).status_code == 403
    assert jq.get_job(member).status == "pending"  # type: ignore[union-attr]
    record = b.fetch()
    assert record is not None and record.cancelled_at is None


def test_read_only_refuses_cancel_and_shows_no_button(
    csrf: Callable[[TestClient], str], jq: JobQueue
) -> None:
    with batch(jobqueue=jq) as b:
        member = ok.enqueue("x").id
    with TestClient(create_app(jq, read_only=True, recurring=[]), base_url=LOCAL) as client:
        response = client.post(f"/batches/{b.id}/cancel", data={"csrf_token": csrf(client)})
        assert response.status_code == 403 and "read-only" in response.text
        for page in (f"/batches/{b.id}", "/batches"):
            text = client.get(page).text
            assert 'method="post"' not in text and "Cancel batch" not in text
    assert jq.get_job(member).status == "pending"  # type: ignore[union-attr]


def test_an_unknown_batch_is_a_404(
    csrf: Callable[[TestClient], str], jq: JobQueue, client: TestClient
) -> None:
    for path in (
        "/batches/01ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "/batches/abc%00def",
        "/batches/" + "Z" * 300,
    ):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "no batch with id" in page.text
    token = csrf(client)
    for path in ("/batches/01ZZZZZZZZZZZZZZZZZZZZZZZZ/cancel", "/batches/abc%00/cancel"):
        assert client.post(path, data={"csrf_token": token}).status_code == 404, path


def test_a_description_is_shown_escaped(jq: JobQueue, client: TestClient) -> None:
    payload = "<script>alert('x')</script>"
    with batch(description=payload, jobqueue=jq) as b:
        ok.enqueue("x")
    for url in ("/batches", f"/batches/{b.id}"):
        page = client.get(url)
        assert page.status_code == 200
        assert "<script>" not in page.text, url
        assert "&lt;script&gt;alert(" in page.text, url
    detail = client.get(f"/batches/{b.id}").text
    shown = re.search(r'<dd id="description">(.*?)</dd>', detail, re.S)
    assert shown is not None and html.unescape(shown.group(1)) == payload
