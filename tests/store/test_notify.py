"""PostgreSQL LISTEN/NOTIFY: an enqueue wakes a listening worker when it commits, and a
listener that notifications cannot reach (behind PgBouncer) says so and leaves the worker to
poll."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from jobqueue import JobCall, JobQueue
from jobqueue.runtime.listener import NotifyListener

from backends import PGBOUNCER, TestDatabase, direct_url

# Also through PgBouncer in transaction mode (tests/backends.py).
pytestmark = pytest.mark.pgbouncer


def listener(
    backend: TestDatabase, queues: list[str], wake, stopped: threading.Event
) -> NotifyListener:
    """A listener as a worker sets one up: through PgBouncer, with a direct listen URL."""
    return NotifyListener(backend.url, queues, wake, stopped, listen_url=direct_url(backend))


def test_enqueue_wakes_a_listener_for_its_queue_at_commit(jq: JobQueue, backend) -> None:
    if jq.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; other backends poll")
    woke = threading.Event()
    stopped = threading.Event()
    listening = listener(backend, ["mail"], woke.set, stopped)
    listening.start()
    try:
        assert woke.wait(15), "the listener wakes once after connecting"
        assert listening.reachable is True, "its probe went through the database URL"
        woke.clear()
        with jq.engine.connect() as connection, connection.begin():
            jq.enqueue_many([JobCall("x", queue="mail")], connection=connection)
            # Delivered only at commit: nothing yet.
            assert not woke.wait(0.3)
        assert woke.wait(10), "the committed enqueue wakes the listener"
        woke.clear()
        jq.enqueue_many([JobCall("x", queue="mail")])
        assert woke.wait(10)
    finally:
        stopped.set()


def test_a_batch_wakes_a_listener_at_commit_only_for_jobs_already_due(
    jq: JobQueue, backend
) -> None:  # type: ignore[no-untyped-def]
    """A batch of plain jobs goes in by COPY, with its NOTIFY beside it: sent for due jobs
    and delivered at commit, not sent for jobs scheduled later."""
    if jq.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; other backends poll")
    woke = threading.Event()
    stopped = threading.Event()
    listening = listener(backend, ["mail"], woke.set, stopped)
    listening.start()
    try:
        assert woke.wait(15), "the listener wakes once after connecting"
        woke.clear()
        later = datetime.now(UTC) + timedelta(hours=1)
        jq.enqueue_many([JobCall("x", queue="mail", scheduled_for=later) for _ in range(3)])
        assert not woke.wait(1), "jobs scheduled for later wake no one"
        with jq.engine.connect() as connection, connection.begin():
            jq.enqueue_many([JobCall("x", queue="mail") for _ in range(3)], connection=connection)
            assert not woke.wait(0.3), "delivered only at commit"
        assert woke.wait(10), "the committed batch wakes the listener"
        assert jq.count_jobs() == 6
    finally:
        stopped.set()


def test_listener_ignores_other_queues(jq: JobQueue, backend) -> None:
    if jq.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; other backends poll")
    wakes: list[int] = []
    connected = threading.Event()

    def wake() -> None:
        wakes.append(1)
        connected.set()

    stopped = threading.Event()
    listening = listener(backend, ["mail"], wake, stopped)
    listening.start()
    assert connected.wait(15)
    wakes.clear()
    for _ in range(5):
        jq.enqueue_many([JobCall("x", queue="reports")])
    jq.enqueue_many([JobCall("x", queue="mail")])  # delivered after the five above
    deadline = threading.Event()
    for _ in range(100):
        if wakes:
            break
        deadline.wait(0.1)
    stopped.set()
    listening.join(timeout=10)
    assert wakes == [1]


def test_a_listener_behind_pgbouncer_says_so_and_stops(jq: JobQueue, backend) -> None:
    """Without a listen URL, a listener behind PgBouncer would LISTEN on a pooled session and
    wait for ever; its probe never arrives, so it logs why and what to set, and stops."""
    if backend.route != PGBOUNCER:
        pytest.skip("the probe fails only behind a transaction pooler")
    wakes: list[int] = []
    stopped = threading.Event()
    listening = NotifyListener(backend.url, None, lambda: wakes.append(1), stopped, probe_timeout=2)
    with capture_logs() as logs:
        listening.start()
        listening.join(timeout=30)
    stopped.set()
    assert listening.reachable is False
    unavailable = [entry for entry in logs if entry["event"] == "listen_unavailable"]
    assert len(unavailable) == 1, logs
    assert "listen_url" in unavailable[0]["hint"]
    assert wakes == [], "a listener that cannot hear never claims to have been woken"
