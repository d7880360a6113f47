"""PostgreSQL LISTEN/NOTIFY: an enqueue wakes a listening worker when it commits."""

from __future__ import annotations

import threading

import pytest

from jobqueue import JobCall, JobQueue
from jobqueue.runtime.listener import NotifyListener


def test_enqueue_wakes_a_listener_for_its_queue_at_commit(jq: JobQueue) -> None:
    if jq.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; other backends poll")
    woke = threading.Event()
    stopped = threading.Event()
    NotifyListener(jq.database_url, ["mail"], woke.set, stopped).start()
    try:
        assert woke.wait(10), "the listener wakes once after connecting"
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


def test_listener_ignores_other_queues(jq: JobQueue) -> None:
    if jq.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; other backends poll")
    wakes: list[int] = []
    connected = threading.Event()

    def wake() -> None:
        wakes.append(1)
        connected.set()

    stopped = threading.Event()
    listener = NotifyListener(jq.database_url, ["mail"], wake, stopped)
    listener.start()
    assert connected.wait(10)
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
    listener._thread.join(timeout=10)
    assert wakes == [1]
