"""End to end in a real headless Chromium: the dashboard served by uvicorn, jobs run by real
``jobrunner work --burst`` processes, on SQLite.

``JOBQUEUE_SCREENSHOTS=docs/img`` saves the pages' screenshots for the README there (otherwise
they go to the test's temporary folder, and are still taken and checked).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jobqueue import JobCall, JobQueue
from jobqueue.dashboard import create_app
from jobqueue.recurring import RecurringTask

from browser import HERE, REBOUND, ServedApp, free_port, run_worker_burst
from workers import wait_until

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TOKEN = "s3cret-token-of-the-browser-tests"
DASHBOARD = [sys.executable, "-m", "jobqueue", "dashboard", "--host", "0.0.0.0"]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = os.environ.get("JOBQUEUE_SCREENSHOTS")
    folder = Path(where) if where else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def served(jq: JobQueue) -> Iterator[ServedApp]:
    tasks = [
        RecurringTask(key="nightly-report", cron="0 3 * * *", job_name="dash.fine"),
        RecurringTask(key="every-5-min", cron="*/5 * * * *", job_name="dash.fine", queue="mail"),
    ]
    with ServedApp(create_app(jq, recurring=tasks)) as app:
        yield app


def test_retry_a_failed_job_and_see_it_succeed(
    jq: JobQueue, page: Any, served: ServedApp, tmp_path: Path, shots: Path
) -> None:
    jq.enqueue_many([JobCall("dash.fine", args=(n,), queue="default") for n in range(12)])
    (flaky,) = jq.enqueue_many(
        [JobCall("dash.flaky", args=("demo",), queue="mail", max_attempts=1)]
    )
    jq.enqueue_many([JobCall("dash.fine", queue="images", args=(n,)) for n in range(5)])
    run_worker_burst(jq.database_url, tmp_path / "work.log")
    assert jq.get_job(flaky.id).status == "failed"  # type: ignore[union-attr]
    jq.enqueue_many([JobCall("dash.fine", queue="mail") for _ in range(3)])  # pending ones

    page.goto(served.url + "/")
    mail = page.locator('tr[data-queue="mail"]')
    assert mail.locator("td.num").nth(3).inner_text() == "1"  # failed
    assert page.locator("#throughput rect.ok").count() >= 1
    screenshot(page, shots, "overview")

    # The jobs list's filter form narrows 21 jobs down to the one failed job of "mail".
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_label("Status").select_option("failed")
    page.get_by_label("Queue").fill("mail")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"/jobs\?status=failed&queue=mail&name=$"))
    rows = page.locator("#jobs tbody tr[data-id]")
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == flaky.id

    # So does the overview's failed count of the queue, which leads to the failed-jobs page.
    page.get_by_role("link", name="Overview").click()
    mail.locator("a.failed-link").click()
    page.wait_for_url(re.compile(r"/failed\?queue=mail$"))
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == flaky.id
    screenshot(page, shots, "failed")

    page.get_by_role("link", name=flaky.id).click()
    page.wait_for_url(re.compile(f"/jobs/{flaky.id}$"))
    assert "RuntimeError: first attempt fails (demo)" in page.locator("#error").inner_text()
    assert "Traceback" in page.locator("#error").inner_text()
    screenshot(page, shots, "job")

    page.get_by_role("button", name="Retry").click()
    page.wait_for_url(re.compile(f"/jobs/{flaky.id}\\?notice="))
    assert page.get_by_role("status").inner_text() == f"job {flaky.id} retried"
    assert page.locator("h1 .badge").inner_text() == "pending"

    run_worker_burst(jq.database_url, tmp_path / "work.log")
    page.reload()
    assert page.locator("h1 .badge").inner_text() == "succeeded"
    assert "2 runs" in page.locator("dl.fields").inner_text()

    page.goto(served.url + "/jobs")
    assert page.locator("#jobs tbody tr[data-id]").count() == 21
    screenshot(page, shots, "jobs")
    page.goto(served.url + "/recurring")
    assert page.locator("#recurring tbody tr").count() == 2
    screenshot(page, shots, "recurring")


def test_a_script_in_arguments_renders_as_text(
    jq: JobQueue, page: Any, served: ServedApp, tmp_path: Path
) -> None:
    payload = "<script>window.__xss = 1; alert('xss')</script><img src=x onerror=alert(2)>"
    (job,) = jq.enqueue_many([JobCall("dash.flaky", args=(payload,), queue="mail", max_attempts=1)])
    run_worker_burst(jq.database_url, tmp_path / "work.log")  # fails: the error repeats it

    for url in (f"/jobs/{job.id}", "/jobs", "/failed"):
        page.goto(served.url + url)
        assert page.evaluate("window.__xss") is None, url
        assert page.locator("img[src=x]").count() == 0, url
    page.goto(f"{served.url}/jobs/{job.id}")
    assert payload in page.locator("#arguments").inner_text()
    assert f"first attempt fails ({payload})" in page.locator("#error").inner_text()
    # The page fixture fails the test if alert() opened a dialog.


def test_stylesheet_and_script_work_under_the_policy(
    jq: JobQueue, page: Any, served: ServedApp, tmp_path: Path
) -> None:
    """No inline style or script is left (the page fixture fails on any the policy blocked),
    and the static ones do their work: the styles apply, the failed list's header box ticks
    every row, and a queue's clear confirmation counts the jobs of the ticked statuses."""
    jq.enqueue_many([JobCall("dash.flaky", queue="mail", max_attempts=1) for _ in range(3)])
    run_worker_burst(jq.database_url, tmp_path / "work.log")
    response = page.goto(served.url + "/failed")
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.evaluate("getComputedStyle(document.querySelector('nav')).backgroundColor") == (
        "rgb(36, 41, 47)"
    )
    rows = page.locator("input[name=ids]")
    assert rows.count() == 3
    page.locator("#select-all").check()
    assert [rows.nth(n).is_checked() for n in range(3)] == [True] * 3
    page.locator("#select-all").uncheck()
    assert [rows.nth(n).is_checked() for n in range(3)] == [False] * 3

    # Clearing a queue behind its confirmation page: the Discard button counts the ticked
    # statuses' jobs as boxes are ticked, and only those are discarded.
    jq.enqueue_many([JobCall("dash.fine", queue="mail") for _ in range(2)])
    (later,) = jq.enqueue_many(
        [JobCall("dash.fine", queue="mail", scheduled_for=datetime.now(UTC) + timedelta(hours=1))]
    )
    page.goto(served.url + "/")
    page.locator('tr[data-queue="mail"]').get_by_role("link", name="Clear…").click()
    page.wait_for_url(re.compile(r"/queues/mail/clear$"))
    assert "cannot be undone" in page.locator("#warning").inner_text()
    discard = page.locator("#discard")
    assert discard.inner_text() == "Discard 3 jobs"
    page.get_by_label("scheduled", exact=True).uncheck()
    assert discard.inner_text() == "Discard 2 jobs"
    page.get_by_label("pending", exact=True).uncheck()
    page.get_by_label("blocked", exact=True).uncheck()
    assert discard.inner_text() == "Discard 0 jobs"
    page.get_by_label("pending", exact=True).check()
    discard.click()
    page.wait_for_url(re.compile(r"/\?notice="))
    assert page.get_by_role("status").inner_text() == "cleared 2 job(s) from queue mail"
    assert jq.admin.clearable("mail") == {"pending": 0, "scheduled": 1, "blocked": 0}
    assert jq.get_job(later.id) is not None


ATTACK = """async () => {
    const read = await fetch("/failed");
    const text = await read.text();
    const token = (text.match(/name="csrf_token" value="([^"]+)"/) || [])[1] || "";
    const post = await fetch("/queues/mail/pause", {
        method: "POST",
        headers: {"content-type": "application/x-www-form-urlencoded"},
        body: "csrf_token=" + encodeURIComponent(token),
    });
    return [read.status, token, post.status];
}"""


def test_a_dns_rebinding_page_gets_nothing_from_a_dashboard_without_a_token(
    jq: JobQueue, page: Any, served: ServedApp
) -> None:
    """Chromium resolves evil.example to 127.0.0.1 (--host-resolver-rules), as the attacker's
    DNS would once the victim had opened the attacker's page: a document of origin
    http://evil.example:PORT then talks to the dashboard as its own origin, and only the Host
    its requests carry gives it away.

    The script runs in such a document (the one the rebound name loads). A page Playwright
    served in its place would count as a public one, and Chromium's Local Network Access would
    stop its requests before they left the browser: a defence of some browsers only, which
    would keep this test from reaching the server's."""
    jq.enqueue_many([JobCall("dash.fine", queue="mail")])
    port = urlsplit(served.url).port
    evil = f"http://{REBOUND}:{port}"

    direct = page.goto(evil + "/failed")
    assert direct.status == 400
    assert page.locator("table").count() == 0 and "csrf_token" not in page.content()
    assert page.evaluate(ATTACK) == [400, "", 400]  # read the CSRF token, then pause "mail"
    assert not any(queue.paused for queue in jq.admin.queues())

    # The control: a dashboard told to answer to that name is reached, and the same script
    # reads its CSRF token and pauses the queue. So the 400s above are the Host check's.
    with ServedApp(create_app(jq, recurring=[], allowed_hosts=[REBOUND])) as allowing:
        page.goto(f"http://{REBOUND}:{urlsplit(allowing.url).port}/")
        assert page.locator("h1").inner_text() == "Overview"
        read, token, posted = page.evaluate(ATTACK)
        assert (read, bool(token), posted) == (200, True, 200)
    assert [queue.paused for queue in jq.admin.queues()] == [True]


@pytest.fixture
def dashboard_on_all_interfaces(jq: JobQueue, tmp_path: Path) -> Iterator[str]:
    """``jobrunner dashboard --host 0.0.0.0 --token ...`` as a subprocess; its loopback URL."""
    port = free_port()
    log = tmp_path / "dashboard.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*DASHBOARD, "--port", str(port), "--token", TOKEN, "--database-url", jq.database_url],
            cwd=HERE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(url + "/login", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, 20, "jobrunner dashboard to answer")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_off_loopback_the_token_is_required(
    jq: JobQueue, page: Any, dashboard_on_all_interfaces: str, shots: Path
) -> None:
    url = dashboard_on_all_interfaces
    assert httpx.get(url + "/").status_code == 401
    assert httpx.get(url + "/metrics").status_code == 401
    bearer = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200 and "jobqueue_workers" in bearer.text

    page.goto(url + "/failed")
    page.wait_for_url(re.compile(r"/login\?next=%2Ffailed$"))
    assert page.locator("table").count() == 0
    screenshot(page, shots, "login")
    page.get_by_label("Token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert "That token is not right." in page.content()
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/failed$"))
    assert page.locator("h1").inner_text() == "Failed jobs"


def test_without_a_token_it_refuses_to_bind_all_interfaces(jq: JobQueue) -> None:
    port = free_port()
    done = subprocess.run(
        [*DASHBOARD, "--port", str(port), "--database-url", jq.database_url],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "JOBQUEUE_DASHBOARD_TOKEN"},
    )
    assert done.returncode == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without authentication" in done.stderr
    assert "--token" in done.stderr and "--insecure" in done.stderr
