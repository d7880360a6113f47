"""Fixtures for the dashboard's route tests: the app on the ``jq`` database of every backend,
a client, and the CSRF token a browser would have read from a page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from jobqueue import JobQueue
from jobqueue.dashboard import create_app

from browser import LOCAL, browser_context, page  # noqa: F401 - fixtures of the browser tests

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: TestClient) -> str:
    """The token from a page's form, as a browser holding the cookie would send it."""
    response = client.get("/login")
    match = CSRF.search(response.text)
    assert match, response.text
    return match.group(1)


@pytest.fixture
def client(jq: JobQueue) -> Iterator[TestClient]:
    with TestClient(create_app(jq, recurring=[]), base_url=LOCAL) as test_client:
        yield test_client


@pytest.fixture
def csrf() -> Callable[[TestClient], str]:
    return csrf_token
