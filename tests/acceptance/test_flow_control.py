"""Flow control with real `jobrunner work` processes on each backend: expiry (a job whose
worker was paused past its deadline never starts), bounded queues under concurrent producers,
and debounce."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

from jobqueue.schema import EXPIRED, SUCCEEDED

import ledger_jobs
from workers import status, wait_until


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
