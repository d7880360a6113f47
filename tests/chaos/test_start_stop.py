"""Start and stop a worker many times while jobs flow: nothing stuck running, no leaked threads
or database connections."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from jobqueue import JobCall, JobQueue
from jobqueue.runtime.worker import Worker
from jobqueue.schema import RUNNING, SUCCEEDED
from jobqueue.settings import WorkerSettings
from jobqueue.testing import drain

from backends import scale_factor
from workers import wait_until

pytestmark = pytest.mark.chaos


def server_connections(jq: JobQueue) -> int | None:
    with jq.engine.connect() as connection:
        if jq.dialect == "postgresql":
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        elif jq.dialect in ("mysql", "mariadb"):
            query = "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE()"
        else:
            return None
        return int(connection.execute(text(query)).scalar_one())


def test_starting_and_stopping_a_worker_repeatedly_leaks_nothing(jq: JobQueue) -> None:
    rounds = max(10, int(50 * scale_factor()))
    settings = WorkerSettings(
        database_url=jq.database_url,
        threads=3,
        heartbeat_interval=0.2,
        dead_threshold=1.5,
        poll_interval=0.05,
        shutdown_timeout=1.0,
    )
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        while producing.is_set():
            jq.enqueue_many([JobCall("startstop.noop") for _ in range(5)])
            time.sleep(0.01)  # a steady trickle of work, not a synchronisation

    from jobqueue import job

    @job(name="startstop.noop")
    def noop() -> None:
        time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    threads_before = threading.active_count()
    connections_before = server_connections(jq)
    try:
        for _ in range(rounds):
            worker = Worker(settings)
            runner = threading.Thread(target=worker.run)
            runner.start()
            wait_until(lambda w=worker: w.in_flight.processed > 0, 30, "the worker to run a job")
            worker.request_stop("test")
            runner.join(timeout=30)
            assert not runner.is_alive()
    finally:
        producing.clear()
        producer.join(timeout=30)
    assert jq.count_jobs(status=RUNNING) == 0
    drain(jq)
    assert jq.count_jobs() == jq.count_jobs(status=SUCCEEDED)
    wait_until(lambda: threading.active_count() <= threads_before, 30, "worker threads to end")
    if connections_before is not None:
        jq.close()
        wait_until(
            lambda: (server_connections(jq) or 0) <= connections_before + 1,
            30,
            "worker connections to close",
        )
