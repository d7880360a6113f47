"""What every request passes before the dashboard's code: the Host check of a token-less
dashboard (DNS rebinding), the origin of POSTs, the cap on request bodies, and the security
headers of every response. None of it depends on the database, so these run on SQLite only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from jobqueue import JobCall, JobQueue, job
from jobqueue.cli import main
from jobqueue.dashboard import create_app
from jobqueue.dashboard.guards import ACTION_BODY_LIMIT, LOGIN_BODY_LIMIT
from jobqueue.testing import drain

from browser import LOCAL

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TOKEN = "correct horse battery staple"
EVIL = "evil.example:18080"
CSP = "default-src 'self'; frame-ancestors 'none'; script-src 'self'"


@job(name="guards.broken", max_attempts=1)
def broken() -> None:
    raise RuntimeError("broken")


def paused(jq: JobQueue) -> list[str]:
    return [q.queue for q in jq.admin.queues() if q.paused]


@pytest.fixture
def mail(jq: JobQueue) -> str:
    """A queue with a pending job, for the pause action to act on."""
    jq.enqueue_many([JobCall("guards.ok", queue="mail")])
    return "mail"


# -- 1. DNS rebinding: the Host of a token-less dashboard ---------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1:18080", "localhost:18080", "LocalHost", "[::1]:18080", "127.8.9.10"]
)
def test_without_a_token_loopback_hosts_are_served(client: TestClient, host: str) -> None:
    assert client.get("/failed", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "host",
    [EVIL, "evil.example", "127.0.0.1.evil.example", "localhost.evil.example:80", "", "a b"],
)
def test_without_a_token_another_host_gets_nothing(
    client: TestClient, csrf: Callable[[TestClient], str], jq: JobQueue, mail: str, host: str
) -> None:
    """A page of evil.example whose name now resolves to 127.0.0.1 reaches the server with
    its own name in Host: it must read no page (no CSRF token) and change nothing."""
    page = client.get("/failed", headers={"host": host})
    assert page.status_code == 400
    assert "csrf_token" not in page.text and "Failed jobs" not in page.text
    token = csrf(client)  # even with a token read by other means
    done = client.post(f"/queues/{mail}/pause", data={"csrf_token": token}, headers={"host": host})
    assert done.status_code == 400
    assert paused(jq) == []


def test_allowed_hosts_add_names_and_domains(jq: JobQueue) -> None:
    app = create_app(jq, recurring=[], allowed_hosts=["dash.lan", "*.corp.example", "[fd00::1]"])
    with TestClient(app, base_url=LOCAL) as client:
        for host in ("dash.lan:8080", "DASH.LAN", "ops.corp.example", "[fd00::1]:8080"):
            assert client.get("/", headers={"host": host}).status_code == 200, host
        for host in ("corp.example", "dash.lan.evil.example", EVIL):
            assert client.get("/", headers={"host": host}).status_code == 400, host


def test_with_a_token_any_host_is_served_to_who_has_it(jq: JobQueue) -> None:
    """The token is what keeps others out there (a rebinding page has no cookie for it)."""
    with TestClient(create_app(jq, token=TOKEN, recurring=[])) as client:
        assert client.get("/", headers={"host": EVIL}).status_code == 401
        bearer = {"host": EVIL, "authorization": f"Bearer {TOKEN}"}
        assert client.get("/", headers=bearer).status_code == 200


def test_jobrunner_dashboard_allows_its_host_and_allowed_hosts(
    jq: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from jobqueue.cli import dashboard as command

    served: list[Any] = []
    # Neither bind (dash.lan resolves nowhere here) nor serve: keep the app it would serve.
    monkeypatch.setattr(command, "_listen", lambda host, port: None)
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, sockets=None: served.append(server.config.app)
    )
    monkeypatch.delenv("JOBQUEUE_DASHBOARD_TOKEN", raising=False)
    url = ["--database-url", jq.database_url]
    command = ["dashboard", "--host", "dash.lan", "--insecure", "--allowed-host", "ops.lan", *url]
    assert main(command) == 0
    with TestClient(served[0], base_url=LOCAL) as client:
        for host in ("dash.lan:8080", "ops.lan:8080", "localhost:8080"):
            assert client.get("/", headers={"host": host}).status_code == 200, host
        assert client.get("/", headers={"host": EVIL}).status_code == 400


# -- 1. The origin of every POST -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:9999"},  # another port is another origin
        {"origin": "https://127.0.0.1"},  # and another scheme
        {"referer": "http://evil.example/attack.html"},
        {"referer": "about:blank"},
    ],
)
def test_a_post_from_another_origin_is_refused(
    client: TestClient,
    csrf: Callable[[TestClient], str],
    jq: JobQueue,
    mail: str,
    headers: dict[str, str],
) -> None:
    done = client.post(f"/queues/{mail}/pause", data={"csrf_token": csrf(client)}, headers=headers)
    assert done.status_code == 403 and "another site" in done.text
    assert paused(jq) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": LOCAL},
        {"origin": "http://127.0.0.1:80"},  # the default port, said or not
        {"referer": f"{LOCAL}/?notice=x"},
        {"origin": LOCAL, "referer": "http://evil.example/"},  # Origin, when sent, decides
        {},  # neither: curl, scripts (the CSRF token still guards them)
    ],
)
def test_a_post_from_the_dashboard_itself_goes_through(
    client: TestClient,
    csrf: Callable[[TestClient], str],
    jq: JobQueue,
    mail: str,
    headers: dict[str, str],
) -> None:
    done = client.post(f"/queues/{mail}/pause", data={"csrf_token": csrf(client)}, headers=headers)
    assert done.status_code == 200 and paused(jq) == [mail]


def test_with_a_token_too_a_post_from_another_origin_is_refused(
    jq: JobQueue, csrf: Callable[[TestClient], str], mail: str
) -> None:
    with TestClient(create_app(jq, token=TOKEN, recurring=[])) as client:
        client.get(f"/?token={TOKEN}")
        data = {"csrf_token": csrf(client)}
        evil = {"origin": "http://evil.example"}
        assert client.post(f"/queues/{mail}/pause", data=data, headers=evil).status_code == 403
        assert paused(jq) == []
        own = {"origin": "http://testserver"}
        assert client.post(f"/queues/{mail}/pause", data=data, headers=own).status_code == 200
        assert paused(jq) == [mail]


# -- 2. Request bodies are capped before any parsing ---------------------------------------------


def test_an_oversized_action_body_is_refused(
    client: TestClient, csrf: Callable[[TestClient], str], jq: JobQueue, mail: str
) -> None:
    data = {"csrf_token": csrf(client), "padding": "x" * ACTION_BODY_LIMIT}
    done = client.post(f"/queues/{mail}/pause", data=data)
    assert done.status_code == 413
    assert paused(jq) == []
    # Just under the cap is an ordinary action.
    data["padding"] = "x" * (ACTION_BODY_LIMIT - 200)
    assert client.post(f"/queues/{mail}/pause", data=data).status_code == 200


def test_an_oversized_login_body_is_refused(
    jq: JobQueue, csrf: Callable[[TestClient], str]
) -> None:
    with TestClient(create_app(jq, token=TOKEN, recurring=[])) as client:
        data = {"csrf_token": csrf(client), "token": TOKEN, "next": "/" + "x" * LOGIN_BODY_LIMIT}
        assert client.post("/login", data=data).status_code == 413
        data["next"] = "/"
        assert client.post("/login", data=data, follow_redirects=False).status_code == 303


def test_a_chunked_body_without_content_length_is_counted(
    client: TestClient, csrf: Callable[[TestClient], str], jq: JobQueue, mail: str
) -> None:
    token = csrf(client)

    def chunks() -> Iterator[bytes]:
        yield f"csrf_token={token}&padding=".encode()
        for _ in range(20):
            yield b"x" * 10_000

    done = client.post(
        f"/queues/{mail}/pause",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 413
    assert paused(jq) == []


def test_the_rest_of_an_oversized_stream_is_never_read(jq: JobQueue) -> None:
    """Straight through ASGI, with a body that never ends: the answer comes after the cap,
    having read no more than one chunk past it."""
    app = create_app(jq, recurring=[])
    chunk = b"x" * 8192
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/failed/retry",
        "raw_path": b"/failed/retry",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=30))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert reads == ACTION_BODY_LIMIT // len(chunk) + 1


# -- 3. Headers on every response, and no inline script or style ---------------------------------


def test_every_response_forbids_framing_sniffing_and_inline_script(
    client: TestClient, jq: JobQueue
) -> None:
    (job,) = jq.enqueue_many([JobCall("guards.ok", queue="mail")])
    answers = [
        client.get("/"),
        client.get("/jobs?limit=500"),
        client.get(f"/jobs/{job.id}"),
        client.get("/login"),
        client.get("/metrics"),
        client.get("/static/dashboard.css"),
        client.get("/nowhere"),  # 404
        client.get("/", headers={"host": EVIL}),  # 400 from the Host check
        client.post("/queues/mail/pause", data={}),  # 403 from the CSRF check
        client.post("/queues/mail/pause", headers={"origin": "http://evil.example"}),  # 403
        client.post("/failed/retry", data={"x": "y" * ACTION_BODY_LIMIT}),  # 413
    ]
    assert [a.status_code for a in answers] == [200] * 6 + [404, 400, 403, 403, 413]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.request.url
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"


def test_pages_carry_no_inline_script_or_style(client: TestClient, jq: JobQueue) -> None:
    """What the policy would block in a browser: <style>, <script> without src, on* handlers
    and style attributes. The stylesheet and the script are files under /static."""
    (job,) = jq.enqueue_many([JobCall("guards.broken", queue="mail", max_attempts=1)])
    drain(jq)
    for url in ("/", "/jobs", "/failed", f"/jobs/{job.id}", "/processes", "/recurring", "/login"):
        html = client.get(url).text
        assert "<style" not in html, url
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), url
        assert not re.search(r"\s(on[a-z]+|style)=", html), url
        assert 'href="/static/dashboard.css"' in html
        assert '<script src="/static/dashboard.js" defer></script>' in html
    css = client.get("/static/dashboard.css")
    assert css.headers["content-type"].startswith("text/css") and ".badge.failed" in css.text
    script = client.get("/static/dashboard.js")
    assert "javascript" in script.headers["content-type"] and "select-all" in script.text
