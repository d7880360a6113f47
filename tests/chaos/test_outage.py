"""Database outages while workers run: connections cut again and again, a server that cannot be
reached for longer than the dead threshold, and a SQLite file that another process keeps locked.
Workers must ride each out without dying or being declared dead, finish every job, and an
enqueue that cannot be written must say so with a clear error, never drop the job silently."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jobqueue import DatabaseUnavailableError, JobQueue
from jobqueue.schema import RUNNING, SUCCEEDED
from jobqueue.testing._proxy import CuttableProxy

import ledger_jobs
from backends import scale_factor
from workers import FAST, kill_connections, summary, wait_until

pytestmark = pytest.mark.chaos

DEAD_THRESHOLD = float(FAST["JOBQUEUE_DEAD_THRESHOLD"])


def tags(jq: JobQueue) -> list[str]:
    with jq.transaction(read_only=True) as connection:
        return list(connection.execute(text("SELECT tag FROM test_ledger")).scalars())


def wait_for_workers(runner, count: int) -> None:  # type: ignore[no-untyped-def]
    def started() -> int:
        return sum(1 for e in runner.events("process_started") if e.get("kind") == "worker")

    wait_until(lambda: started() == count, 60, f"{count} workers to start")


def assert_rode_it_out(jq: JobQueue, runner, expected: int | None, workers: int) -> None:  # type: ignore[no-untyped-def]
    """Every job succeeded (``expected`` of them, if known), none is left running, and no worker
    died or was declared dead."""
    if expected is not None:
        assert jq.count_jobs() == expected, summary(jq)
    wait_until(
        lambda: jq.count_jobs(status=SUCCEEDED) == jq.count_jobs(),
        180,
        "every job to succeed",
    )
    assert jq.count_jobs(status=RUNNING) == 0
    assert len(runner.events("worker_started")) == workers, "a worker died instead of waiting"
    assert not runner.events("process_declared_dead"), "a live worker was declared dead"
    runner.signal_group(signal.SIGTERM)
    assert runner.wait(30) == 0, runner.output()[-3000:]


# -- PostgreSQL and MariaDB ----------------------------------------------------------------------


def test_connections_cut_again_and_again_for_ten_seconds(jq: JobQueue, ledger, work) -> None:  # type: ignore[no-untyped-def]
    """pg_terminate_backend / KILL every worker connection several times a second for 10 s,
    while the test keeps enqueueing: each enqueue either returns (and its job runs) or raises
    DatabaseUnavailableError."""
    if jq.dialect == "sqlite":
        pytest.skip("SQLite has no connections to cut; the locked-file tests cover it")
    count = max(300, int(1000 * scale_factor()))
    jq.enqueue_many([ledger_jobs.sleep.call(0.005) for _ in range(count)])
    runner = work("--processes", "2", "--threads", "4")
    wait_until(lambda: len(ledger()) >= 50, 60, "jobs to be running")
    wait_for_workers(runner, 2)

    accepted: list[str] = []
    refused: list[tuple[str, str]] = []
    unexpected: list[BaseException] = []
    stop = threading.Event()

    def enqueue_throughout() -> None:
        number = 0
        while not stop.wait(0.02):
            number += 1
            tag = f"during-{number}"
            try:
                ledger_jobs.record.using(jobqueue=jq).enqueue(tag)
            except DatabaseUnavailableError as error:
                refused.append((tag, str(error)))
            except BaseException as error:
                unexpected.append(error)
            else:
                accepted.append(tag)

    enqueuer = threading.Thread(target=enqueue_throughout)
    enqueuer.start()
    cuts = 0
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            cuts += kill_connections(jq) > 0
            time.sleep(0.25)  # the outage pattern itself: a cut four times a second
    finally:
        stop.set()
        enqueuer.join(30)
    assert unexpected == [], f"enqueue raised something other than a clear error: {unexpected!r}"
    assert cuts >= 20 and accepted
    # A refused enqueue wrote nothing, unless its error said the commit's fate is unknown.
    unknown = [tag for tag, message in refused if "unknown" in message]
    with jq.transaction(read_only=True) as connection:
        written = connection.execute(text("SELECT count(*) FROM job_queue")).scalar_one()
    assert count + len(accepted) <= written <= count + len(accepted) + len(unknown), refused
    assert_rode_it_out(jq, runner, None, workers=2)
    ran = tags(jq)
    assert set(accepted) <= set(ran), "an accepted enqueue was lost"
    assert not {tag for tag, _ in refused} - set(unknown) & set(ran), refused


def test_a_server_out_of_reach_past_the_dead_threshold(jq: JobQueue, ledger, work) -> None:  # type: ignore[no-untyped-def]
    """Through a proxy that is taken down: every connection cut and new ones refused for longer
    than the dead threshold. Workers back off and come back; nobody is declared dead because
    every heartbeat is old after an outage; an enqueue during it raises at once."""
    if jq.dialect == "sqlite":
        pytest.skip("SQLite is a local file; the locked-file tests cover it")
    with CuttableProxy(jq.database_url) as proxy:
        count = 300
        jq.enqueue_many([ledger_jobs.sleep.call(0.005) for _ in range(count)])
        runner = work("--processes", "2", "--threads", "2", database_url=proxy.url)
        wait_until(lambda: len(ledger()) >= 30, 60, "jobs to be running")
        wait_for_workers(runner, 2)
        with JobQueue(proxy.url) as client:
            ledger_jobs.record.using(jobqueue=client).enqueue("before")  # the pool is warm
            down_at = time.monotonic()
            assert proxy.take_down() > 0
            with pytest.raises(DatabaseUnavailableError, match="cannot reach the database"):
                ledger_jobs.record.using(jobqueue=client).enqueue("refused")
            wait_until(
                lambda: runner.events("claim_failed") and runner.events("heartbeat_failed"),
                30,
                "the workers and the supervisor to notice the outage",
            )
            # The outage itself: longer than the dead threshold, so every heartbeat is stale.
            time.sleep(max(0.0, down_at + 2 * DEAD_THRESHOLD - time.monotonic()))
            proxy.restore()
            ledger_jobs.record.using(jobqueue=client).enqueue("after")  # the pool recovers
        assert_rode_it_out(jq, runner, count + 2, workers=2)
        assert proxy.refused > 0
        assert runner.events("database_contact_restored")
    ran = tags(jq)
    assert "refused" not in ran and {"before", "after"} <= set(ran)


# -- SQLite ---------------------------------------------------------------------------------------

LOCKER = textwrap.dedent(
    """
    import sqlite3, sys, time
    connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))  # how long the other writer holds the lock
    connection.execute("COMMIT")
    """
)


def hold_write_lock(jq: JobQueue, seconds: float) -> subprocess.Popen[str]:
    """Another process takes the database's write lock and keeps it for ``seconds``."""
    path = make_url(jq.database_url).database
    assert path
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    return locker


def sqlite_workers_running(jq: JobQueue, ledger, work, *, busy_timeout: float):  # type: ignore[no-untyped-def]
    """Two SQLite workers with this busy timeout, part-way through 300 short jobs."""
    if jq.dialect != "sqlite":
        pytest.skip("a SQLite file lock")
    count = 300
    jq.enqueue_many([ledger_jobs.sleep.call(0.005) for _ in range(count)])
    runner = work("--processes", "2", "--threads", "2", "--sqlite-busy-timeout", str(busy_timeout))
    wait_until(lambda: len(ledger()) >= 30, 60, "jobs to be running")
    wait_for_workers(runner, 2)
    return runner, count


def test_sqlite_lock_shorter_than_the_busy_timeout_is_waited_out(
    jq: JobQueue, ledger, work
) -> None:  # type: ignore[no-untyped-def]
    runner, count = sqlite_workers_running(jq, ledger, work, busy_timeout=5)
    locker = hold_write_lock(jq, 1.5)
    ledger_jobs.record.using(jobqueue=jq).enqueue("while locked")  # waits for the lock
    assert locker.wait(30) == 0
    assert_rode_it_out(jq, runner, count + 1, workers=2)
    output = runner.output()
    for sign in ("database is locked", "claim_failed", "heartbeat_failed", "maintenance_failed"):
        assert sign not in output, f"{sign!r} while a lock was held within the busy timeout"
    assert "while locked" in tags(jq)


def test_sqlite_lock_longer_than_the_busy_timeout_backs_off(jq: JobQueue, ledger, work) -> None:  # type: ignore[no-untyped-def]
    runner, count = sqlite_workers_running(jq, ledger, work, busy_timeout=0.5)
    # Longer than the busy timeout, and than the dead threshold (heartbeats fail meanwhile).
    locker = hold_write_lock(jq, 2 * DEAD_THRESHOLD + 1)
    with (
        JobQueue(jq.database_url, busy_timeout_ms=500) as impatient,
        pytest.raises(DatabaseUnavailableError, match="locked by another writer"),
    ):
        ledger_jobs.record.using(jobqueue=impatient).enqueue("refused")
    wait_until(lambda: runner.events("claim_failed"), 30, "the workers to back off")
    assert locker.wait(30) == 0
    assert_rode_it_out(jq, runner, count, workers=2)
    assert runner.events("database_contact_restored")
    assert "refused" not in tags(jq)


def test_work_started_before_the_database_is_reachable_waits_for_it(
    jq: JobQueue,
    ledger,  # type: ignore[no-untyped-def]
    work,  # type: ignore[no-untyped-def]
) -> None:
    """Started with its database (a container stack, a reboot), `jobrunner work` waits for the
    database with backoff instead of exiting: SQLite locked by another process, a server behind
    a proxy that is down."""
    handle = ledger_jobs.record.using(jobqueue=jq).enqueue("first")
    with CuttableProxy(jq.database_url) as proxy:
        if jq.dialect == "sqlite":
            locker = hold_write_lock(jq, 3)
            runner = work("--sqlite-busy-timeout", "0.2", "--burst")
        else:
            proxy.take_down()
            runner = work("--burst", database_url=proxy.url)
        wait_until(lambda: runner.events("process_start_waiting"), 30, "the start to wait")
        if jq.dialect == "sqlite":
            assert locker.wait(30) == 0
        else:
            proxy.restore()
        assert runner.wait(60) == 0, runner.output()[-3000:]
    row = jq.get_job(handle.id)
    assert row is not None and row.status == SUCCEEDED
    assert "first" in tags(jq)
