"""Flow control with real `jobrunner work` processes on each backend: expiry (a job whose
worker was paused past its deadline never starts), bounded queues under concurrent producers,
and debounce."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from jobqueue.schema import EXPIRED, SUCCEEDED
from jobqueue.store import bounds

import ledger_jobs
from backends import scale_factor
from workers import HERE, status, wait_until


def test_a_job_whose_worker_was_paused_past_its_deadline_never_starts(jq, ledger, work) -> None:
    runner = work("--threads", "2")
    warm = ledger_jobs.record.using(jobqueue=jq).enqueue("warm")
    wait_until(lambda: status(jq, warm.id) == SUCCEEDED, 30, "the worker to run a first job")
    runner.signal_group(signal.SIGSTOP)
    try:
        late = ledger_jobs.record.using(jobqueue=jq, expires_in=timedelta(seconds=1)).enqueue("x")
        on_time = ledger_jobs.record.using(jobqueue=jq).enqueue("on time")
        record = jq.get_job(late.id)
        assert record is not None and record.expires_at is not None
        deadline = record.expires_at
        wait_until(lambda: datetime.now(UTC) > deadline, 10, "the deadline to pass")
    finally:
        runner.signal_group(signal.SIGCONT)
    wait_until(lambda: status(jq, on_time.id) == SUCCEEDED, 30, "the job without a deadline")
    wait_until(lambda: status(jq, late.id) == EXPIRED, 30, "the late job to expire")
    assert late.id not in {job_id for job_id, _, _ in ledger()}
    wait_until(lambda: runner.events("job_expired"), 10, "the job_expired event")
    (event,) = runner.events("job_expired")
    assert event["job_id"] == late.id and event["job_name"] == "ledger.record"


def test_max_pending_holds_under_four_producers_and_blocked_ones_proceed(
    jq, ledger, work, tmp_path
) -> None:
    bound, each = 10, max(10, int(40 * scale_factor()))
    highest = [0]
    done = threading.Event()

    def watch() -> None:  # the waiting jobs of the queue, as often as it can read them
        while not done.is_set():
            with jq.transaction(read_only=True) as connection:
                highest[0] = max(highest[0], bounds.waiting_jobs(connection, "bounded"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        producers = [
            subprocess.Popen(
                [sys.executable, "bounded_producer.py", jq.database_url, str(bound), str(each)],
                cwd=HERE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        # No worker yet: the producers fill the queue to its bound and are pushed back; the
        # worker then drains it, and the blocked enqueues proceed.
        wait_until(lambda: highest[0] == bound, 60, "the queue to fill up")
        runner = work("--queues", "bounded", "--threads", "2")
        reports = []
        for producer in producers:
            out, err = producer.communicate(timeout=300)
            assert producer.returncode == 0, err[-3000:]
            reports.append(json.loads(out))
        wait_until(lambda: len(ledger()) == 4 * each, 120, "every nap to run")
    finally:
        done.set()
        watcher.join(30)
    assert highest[0] <= bound, f"{highest[0]} jobs were waiting in a queue bounded at {bound}"
    assert sum(report["refused"] for report in reports) > 0, "the bound never pushed back"
    assert jq.count_jobs(status=SUCCEEDED, queue="bounded") == 4 * each
    runner.stop()


def test_a_hundred_calls_over_two_seconds_debounce_into_one_run_with_the_last(
    jq, ledger, work
) -> None:
    runner = work("--threads", "2")
    enqueue = ledger_jobs.debounced.using(jobqueue=jq)
    start = time.monotonic()
    handles = []
    for index in range(100):  # one call every 20 ms, each well inside the 1 s window
        wait_until(lambda i=index: time.monotonic() >= start + i * 0.02, 5, "the next call")
        last_call = datetime.now(UTC)
        handles.append(enqueue.enqueue(f"call-{index}"))
    assert len({handle.id for handle in handles}) == 1
    wait_until(lambda: status(jq, handles[0].id) == SUCCEEDED, 30, "the debounced run")
    with jq.transaction(read_only=True) as connection:
        tags = connection.execute(text("SELECT tag FROM test_ledger")).scalars().all()
    assert tags == ["call-99"]
    assert jq.count_jobs() == 1  # no other job was written
    record = jq.get_job(handles[0].id)
    assert record is not None and record.started_at is not None
    assert record.started_at >= last_call + timedelta(seconds=1)  # after the quiet
    runner.stop()
