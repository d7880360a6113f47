"""Every due-work suite here runs on each backend: the harness host is installed per test, on
the backend's freshly emptied database, with the queue connected through a reply-losing proxy
on PostgreSQL and MariaDB."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from jobqueue import JobQueue
from jobqueue.testing.due_work import Harness, hosted

HERE = Path(__file__).parent
REPO = HERE.parents[1]
for place in (str(HERE), str(REPO)):
    if place not in sys.path:
        sys.path.insert(0, place)

import handoff_jobs  # noqa: E402

import examples.transactional as transactional  # noqa: E402

APPS = ["handoff_jobs", "examples.quickstart", "examples.transactional"]


@pytest.fixture(autouse=True)
def harness(jq: JobQueue, backend: object) -> Iterator[Harness]:
    """The host for this test; the handoff jobs' mailbox starts empty."""
    url = jq.database_url
    with jq.transaction() as connection:
        connection.execute(text("DROP TABLE IF EXISTS dw_mailbox"))
        connection.execute(text("DROP TABLE IF EXISTS example_users"))
    handoff_jobs.metadata.create_all(jq.engine)
    transactional.Base.metadata.create_all(jq.engine)
    with hosted(url, apps=APPS, production_packages={"examples"}, cwd=HERE, paths=[REPO]) as h:
        yield h
    for engine in handoff_jobs._engines.values():
        engine.dispose()
    handoff_jobs._engines.clear()
