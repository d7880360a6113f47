"""``jobrunner queues clear`` on a million waiting jobs on PostgreSQL while workers run another
queue: the clear goes a thousand rows per transaction, so the workers' throughput drops by
less than half, and the clear finishes (the size scales with JOBQUEUE_TEST_SCALE)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from jobqueue import JobQueue
from jobqueue.schema import SUCCEEDED

import ledger_jobs
from backends import scale_factor
from workers import Work, wait_until


def _fill(jq: JobQueue, count: int) -> None:
    """``count`` due no-op jobs in queue "bulk", written by the database itself."""
    with jq.transaction() as connection:
        connection.execute(
            text(
                "INSERT INTO job_queue (id, name, args, queue, priority, status, scheduled_for, "
                "attempts, failed_attempts, max_attempts, created_at) "
                "SELECT '01ZZZZ' || lpad(i::text, 20, '0'), 'ledger.record', '{\"args\":[]}', "
                "'bulk', 0, 'pending', timezone('UTC', now()), 0, 0, 25, timezone('UTC', now()) "
                "FROM generate_series(1, :count) AS i"
            ),
            {"count": count},
        )
        connection.execute(text("ANALYZE job_queue"))


def _done(jq: JobQueue) -> int:
    return jq.count_jobs(status=SUCCEEDED, queue="other")


def _rate(jq: JobQueue, seconds: float) -> float:
    """Jobs of queue "other" finished per second over ``seconds``."""
    before, start = _done(jq), time.monotonic()
    time.sleep(seconds)  # the measuring window itself, not a wait for anything
    return (_done(jq) - before) / (time.monotonic() - start)


def test_clearing_a_million_jobs_leaves_other_queues_running(
    jq: JobQueue, work: Callable[..., Work]
) -> None:
    if jq.dialect != "postgresql":
        pytest.skip("the million-row clear is the PostgreSQL case; the clear itself is "
                    "tested on every backend in tests/store/test_purge.py")  # fmt: skip
    count = max(50_000, int(1_000_000 * scale_factor()))
    _fill(jq, count)
    # Work that lasts: 4 threads of 20 ms naps are ~200 jobs/s for several minutes.
    jq.enqueue_many([ledger_jobs.doze.call(0.02) for _ in range(100_000)])
    runner = work("--queues", "other", "--threads", "4")
    wait_until(lambda: _done(jq) > 200, 60, "the workers to get going")
    baseline = _rate(jq, 5)
    cleared: list[int] = []
    clearing = threading.Thread(target=lambda: cleared.append(jq.admin.clear_queue("bulk")))
    started = time.monotonic()
    clearing.start()
    during = []
    while clearing.is_alive():
        during.append(_rate(jq, 2))
    clearing.join()
    took = time.monotonic() - started
    runner.stop()
    assert cleared == [count]
    assert jq.count_jobs(queue="bulk") == 0
    slowest = min(during) if during else baseline
    average = sum(during) / len(during) if during else baseline
    print(f"cleared {count} in {took:.1f} s; workers {baseline:.0f}/s before, "
          f"{average:.0f}/s on average during (slowest 2 s: {slowest:.0f}/s)")  # fmt: skip
    assert average > baseline / 2, (baseline, during)
