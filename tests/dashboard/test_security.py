"""Token auth, the login form, redirects that stay inside the app, the refusal to bind beyond
loopback without a token or with a short one, failed logins logged and rate-limited, and the
CLI without the dashboard's extra. Auth does not depend on
the database, so these run on SQLite only."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from jobqueue import JobQueue
from jobqueue.cli import main
from jobqueue.cli.dashboard import check_binding
from jobqueue.dashboard import create_app, ratelimit
from jobqueue.dashboard.ratelimit import MAX_FAILURES, WINDOW_SECONDS
from jobqueue.dashboard.security import (
    AUTH_COOKIE,
    MAKE_TOKEN,
    MIN_TOKEN_LENGTH,
    Security,
    WeakTokenError,
    is_loopback,
    safe_next,
)
from jobqueue.errors import ConfigurationError

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TOKEN = "correct horse battery staple"
HTML = {"accept": "text/html"}


@pytest.fixture
def guarded(jq: JobQueue) -> Iterator[TestClient]:
    with TestClient(create_app(jq, token=TOKEN, recurring=[])) as client:
        yield client


def basic(password: str, user: str = "ops") -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {encoded}"}


@pytest.mark.parametrize("path", ["/", "/jobs", "/failed", "/processes", "/recurring", "/metrics"])
def test_every_page_needs_the_token(guarded: TestClient, path: str) -> None:
    refused = guarded.get(path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="jobqueue"'
    assert "Overview" not in refused.text and "jobqueue_jobs" not in refused.text
    assert guarded.get(path, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get(path, headers=basic(TOKEN)).status_code == 200
    assert guarded.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get(path, headers=basic("wrong")).status_code == 401
    assert guarded.get(path, headers={"authorization": "Basic !!!"}).status_code == 401


def test_a_browser_is_sent_to_the_login_form_and_back(
    guarded: TestClient, csrf: Callable[[TestClient], str]
) -> None:
    first = guarded.get("/failed?queue=mail", headers=HTML, follow_redirects=False)
    assert first.status_code == 303
    target = urlsplit(first.headers["location"])
    assert target.path == "/login" and parse_qs(target.query) == {"next": ["/failed"]}

    token = csrf(guarded)
    wrong = guarded.post("/login", data={"csrf_token": token, "token": "nope", "next": "/failed"})
    assert wrong.status_code == 401 and "That token is not right." in wrong.text
    assert guarded.post("/login", data={"token": TOKEN}).status_code == 403  # no CSRF token
    done = guarded.post(
        "/login",
        data={"csrf_token": token, "token": TOKEN, "next": "/failed"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/failed"
    assert TOKEN not in done.headers["set-cookie"]  # the cookie holds an HMAC, not the token
    assert guarded.get("/failed").status_code == 200  # the cookie now stands for the token


def test_token_in_the_query_sets_the_cookie_and_leaves_the_address_bar(
    guarded: TestClient,
) -> None:
    wrong = guarded.get("/jobs?token=nope&status=failed", follow_redirects=False)
    assert wrong.status_code == 401 and AUTH_COOKIE not in guarded.cookies
    right = guarded.get(f"/jobs?token={TOKEN}&status=failed", follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/jobs?status=failed"
    assert guarded.get("/jobs?status=failed").status_code == 200


def test_a_forged_cookie_does_not_pass(jq: JobQueue, guarded: TestClient) -> None:
    guarded.cookies.set(AUTH_COOKIE, "0" * 64)
    assert guarded.get("/").status_code == 401
    # Another app's cookie (another secret) is no good here either.
    with TestClient(create_app(jq, token=TOKEN, recurring=[])) as other:
        other.get(f"/?token={TOKEN}")
        guarded.cookies.set(AUTH_COOKIE, other.cookies[AUTH_COOKIE])
    assert guarded.get("/").status_code == 401


def test_actions_need_the_token_and_the_csrf_token(
    jq: JobQueue, guarded: TestClient, csrf: Callable[[TestClient], str]
) -> None:
    token = csrf(guarded)
    assert guarded.post("/queues/mail/pause", data={"csrf_token": token}).status_code == 401
    guarded.get(f"/?token={TOKEN}")
    assert guarded.post("/queues/mail/pause", data={}).status_code == 403
    assert jq.admin.queues() == []
    assert guarded.post("/queues/mail/pause", data={"csrf_token": token}).status_code == 200
    assert [q.queue for q in jq.admin.queues() if q.paused] == ["mail"]


def test_login_redirects_only_inside_the_app(
    guarded: TestClient, csrf: Callable[[TestClient], str]
) -> None:
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example", "jobs"):
        assert safe_next(evil) == "/"
        done = guarded.post(
            "/login",
            data={"csrf_token": csrf(guarded), "token": TOKEN, "next": evil},
            follow_redirects=False,
        )
        assert done.headers["location"] == "/"
    assert safe_next("/jobs?status=failed") == "/jobs?status=failed"


def test_which_hosts_count_as_loopback(jq: JobQueue) -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com"):
        assert not is_loopback(host), host
        with pytest.raises(ConfigurationError, match="--token"):
            check_binding(host, None, False)
        check_binding(host, TOKEN, False)
        check_binding(host, None, True)
    check_binding("127.0.0.1", None, False)


def test_all_interfaces_without_a_token_refuses_before_binding(
    jq: JobQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBQUEUE_DASHBOARD_TOKEN", raising=False)
    code = main(["dashboard", "--host", "0.0.0.0", "--database-url", jq.database_url])
    assert code == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without authentication" in (
        capsys.readouterr().err
    )


def test_without_the_extra_the_command_says_what_to_install(
    jq: JobQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails
    assert main(["dashboard", "--database-url", jq.database_url]) == 1
    err = capsys.readouterr().err
    assert "uvicorn is missing" in err and "pip install 'jobqueue[dashboard]'" in err


def test_the_core_package_imports_without_the_extras(jq: JobQueue) -> None:
    """Starlette, Jinja2, uvicorn and prometheus_client load only with the dashboard/metrics."""
    blocked = ["starlette", "jinja2", "uvicorn", "prometheus_client", "multipart"]
    script = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import jobqueue, jobqueue.admin, jobqueue.cli\n"
        "import jobqueue.runtime.worker, jobqueue.runtime.supervisor\n"
        "from jobqueue.cli import build_parser\n"
        "build_parser().parse_args(['dashboard'])\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- Weak tokens, failed logins and the redirect of ?token= -------------------------------------


@pytest.mark.parametrize("weak", ["", "x", "correct horse", "f" * (MIN_TOKEN_LENGTH - 1)])
def test_a_short_token_is_refused_saying_how_to_make_one(jq: JobQueue, weak: str) -> None:
    builds = [
        lambda: Security(token=weak, secret=None),
        lambda: create_app(jq, token=weak, recurring=[]),
    ]
    if weak:  # an empty --token (or $JOBQUEUE_DASHBOARD_TOKEN) means none, as before
        builds.append(lambda: check_binding("0.0.0.0", weak, False))
    for build in builds:
        with pytest.raises(WeakTokenError, match=re.escape(MAKE_TOKEN)) as raised:
            build()
        assert isinstance(raised.value, ValueError | ConfigurationError)
    create_app(jq, token="f" * MIN_TOKEN_LENGTH, recurring=[])


def test_jobrunner_dashboard_refuses_a_short_token_before_binding(
    jq: JobQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobqueue.cli import dashboard as command

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("bound despite a weak token")

    monkeypatch.setattr(command, "_listen", never)
    assert main(["dashboard", "--token", "hunter2", "--database-url", jq.database_url]) == 1
    err = capsys.readouterr().err
    assert "at least 16 characters" in err and "secrets.token_urlsafe(32)" in err


def test_every_failed_authentication_is_logged_without_the_secret(
    guarded: TestClient, csrf: Callable[[TestClient], str]
) -> None:
    guesses = {"bearer": "guess-one", "basic": "guess-two", "query": "guess-3", "form": "guess-4"}
    with capture_logs() as logs:
        guarded.get("/", headers={"authorization": f"Bearer {guesses['bearer']}"})
        guarded.get("/metrics", headers=basic(guesses["basic"]))
        guarded.get(f"/jobs?token={guesses['query']}")
        guarded.post("/login", data={"csrf_token": csrf(guarded), "token": guesses["form"]})
        guarded.get("/")  # no token at all: not a guess, not logged
        guarded.cookies.set(AUTH_COOKIE, "0" * 64)
        guarded.get("/")  # a stale cookie (the app restarted): not a guess either
    failed = [entry for entry in logs if entry["event"] == "dashboard_auth_failed"]
    assert [entry["method"] for entry in failed] == ["bearer", "basic", "query", "form"]
    assert {entry["client"] for entry in failed} == {"testclient"}
    assert {entry["log_level"] for entry in failed} == {"warning"}
    logged = repr(logs)
    assert not any(guess in logged for guess in [*guesses.values(), TOKEN])


def test_too_many_failures_from_one_address_get_429_until_the_window_passes(
    guarded: TestClient, csrf: Callable[[TestClient], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(ratelimit, "_now", lambda: now[0])
    browser = TestClient(guarded.app)  # logged in before: its cookie keeps working
    browser.get(f"/?token={TOKEN}")
    wrong = {"authorization": "Bearer wrong"}
    right = {"authorization": f"Bearer {TOKEN}"}
    for _ in range(MAX_FAILURES):
        assert guarded.get("/metrics", headers=wrong).status_code == 401
    blocked = guarded.get("/metrics", headers=wrong)
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"
    # While blocked, no guess is even checked: the right token gets 429 too, in every form.
    assert guarded.get("/metrics", headers=right).status_code == 429
    assert guarded.get(f"/metrics?token={TOKEN}", follow_redirects=False).status_code == 429
    login = guarded.post("/login", data={"csrf_token": csrf(guarded), "token": TOKEN})
    assert login.status_code == 429
    assert browser.get("/").status_code == 200  # no new guess: the cookie is the token's
    now[0] += WINDOW_SECONDS - 1
    assert guarded.get("/metrics", headers=right).status_code == 429
    now[0] += 1
    assert guarded.get("/metrics", headers=right).status_code == 200


def test_the_token_in_the_query_never_redirects_off_the_app(
    jq: JobQueue, guarded: TestClient
) -> None:
    """``//evil.example/x`` is a path to the server, but a Location to another site."""
    for path in ("//evil.example/x", "///evil.example/x", "/\\evil.example/x"):
        done = guarded.get(f"http://testserver{path}?token={TOKEN}", follow_redirects=False)
        assert done.status_code == 303, path
        assert done.headers["location"] == "/", path
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount("/ops", app=create_app(jq, token=TOKEN, recurring=[]))])
    with TestClient(host) as client:
        done = client.get(f"/ops//evil.example/x?token={TOKEN}", follow_redirects=False)
        assert done.headers["location"] == "/ops/"
        done = client.get(f"/ops/failed?queue=mail&token={TOKEN}", follow_redirects=False)
        assert done.headers["location"] == "/ops/failed?queue=mail"


def test_jobrunner_dashboard_on_a_taken_port_says_so_in_one_line(jq: JobQueue) -> None:
    """And says nothing about having started: the port is bound before that line."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "jobqueue", "dashboard", "--port", str(port)],
            env={**os.environ, "JOBQUEUE_DATABASE_URL": jq.database_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "dashboard_started" not in done.stderr


def test_jobrunner_dashboard_serves_on_the_socket_it_bound(jq: JobQueue) -> None:
    import socket

    import httpx

    from workers import wait_until

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "dashboard", "--port", str(port)],
        env={**os.environ, "JOBQUEUE_DATABASE_URL": jq.database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def overview() -> bool:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(overview, 30, "the dashboard to answer")
    finally:
        server.terminate()
        server.wait(timeout=30)
