"""Token auth, the login form, redirects that stay inside the app, the refusal to bind beyond
loopback without a token, and the CLI without the dashboard's extra. Auth does not depend on
the database, so these run on SQLite only."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from jobqueue import JobQueue
from jobqueue.cli import main
from jobqueue.cli.dashboard import check_binding
from jobqueue.dashboard import create_app
from jobqueue.dashboard.security import AUTH_COOKIE, is_loopback, safe_next
from jobqueue.errors import ConfigurationError

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

TOKEN = "correct horse"
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
