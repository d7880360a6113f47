"""A real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) and a real
dashboard server (uvicorn on a loopback port), for the end-to-end tests.

Where Chromium or Playwright is missing the browser tests skip with the reason, unless
``JOBQUEUE_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes that a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from workers import FAST, wait_until

CHROMIUM = Path(os.environ.get("JOBQUEUE_CHROMIUM", "/usr/bin/chromium"))
REQUIRE = "JOBQUEUE_REQUIRE_BROWSER"
REBOUND = "evil.example"
# No outside network here: keep Chromium from reaching for it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # As DNS rebinding would have it: a name of another site resolving to this machine.
    f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",
]
HERE = Path(__file__).parent  # where dash_jobs.py lives
#: Where every dashboard test's client says it is (Chromium and the TestClients alike): a
#: dashboard without a token answers only to loopback hosts and those it is told of, not to
#: the TestClient's default "testserver".
LOCAL = "http://127.0.0.1"


def browser_missing(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} (required by {REQUIRE}=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium per test module, with a fresh profile directory. Not per session: while
    Playwright's sync API runs, this thread counts as inside an event loop, so later tests'
    ``asyncio.run`` (async jobs) would fail."""
    if not CHROMIUM.exists():
        browser_missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_missing("Playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A new tab; a JavaScript dialog (what an injected ``alert`` would open) fails the test,
    and so does anything the Content-Security-Policy blocked (an inline style or script left in
    a template) and any error a script threw."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    dialogs: list[str] = []
    blocked: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        tab.close()
    assert not dialogs, f"the page opened a JavaScript dialog: {dialogs}"
    assert not blocked, f"the Content-Security-Policy blocked: {blocked}"
    assert not errors, f"a script failed: {errors}"


class ServedApp:
    """An ASGI app served by uvicorn from a thread, on a loopback port of its own."""

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> ServedApp:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, "uvicorn to start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


def run_worker_burst(database_url: str, log: Path, timeout: float = 60) -> None:
    """``jobrunner work --burst`` as a subprocess: runs what is due, then exits."""
    env = {**os.environ, **FAST, "JOBQUEUE_DATABASE_URL": database_url}
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "jobqueue", "work", "--app", "dash_jobs", "--burst"],
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    assert done.returncode == 0, log.read_text()[-4000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
