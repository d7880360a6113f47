"""Durable steps with real ``jobrunner work`` processes: a job killed in step 3 of 5 resumes at
step 3, and a graceful stop lets a job go at its next step boundary, uncounted."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from jobqueue import JobQueue
from jobqueue.schema import RUNNING, SUCCEEDED

import ledger_jobs
from workers import status, wait_until


def test_a_job_killed_in_step_3_of_5_resumes_at_step_3(
    jq: JobQueue, ledger, work, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    handle = ledger_jobs.five_steps.using(jobqueue=jq).enqueue(str(tmp_path / "never"))
    first = work("--threads", "2")
    wait_until(lambda: len(ledger()) == 3, 30, "the job to reach step 3")
    first.signal_group(signal.SIGKILL)
    first.process.wait(10)
    assert status(jq, handle.id) == RUNNING  # nobody was left to say otherwise
    second = work("--burst")
    assert second.wait(60) == 0, second.output()[-3000:]
    assert handle.result(timeout=10) == {"total": 15}  # built from the recorded results too
    tags = Counter(tag for tag in tags_of(jq))
    assert tags == {"step-1": 1, "step-2": 1, "step-3": 2, "step-4": 1, "step-5": 1}


def test_sigterm_lets_a_job_go_at_its_next_step_uncounted(jq: JobQueue, ledger, work) -> None:  # type: ignore[no-untyped-def]
    handle = ledger_jobs.five_steps.using(jobqueue=jq).enqueue(None, 1.5)
    first = work("--threads", "1", "--shutdown-timeout", "30")
    wait_until(lambda: "step-2" in tags_of(jq), 30, "the job to be in step 2")
    began = time.monotonic()
    first.signal_group(signal.SIGTERM)
    assert first.wait(30) == 0, first.output()[-3000:]
    assert time.monotonic() - began < 25, "it waited for the job instead of releasing it"
    row = jq.get_job(handle.id)
    assert row is not None and (row.status, row.failed_attempts) == ("pending", 0)
    assert first.events("job_released")
    assert "step-3" not in tags_of(jq)  # released at the boundary, before step 3 began
    second = work("--burst")
    assert second.wait(60) == 0, second.output()[-3000:]
    assert status(jq, handle.id) == SUCCEEDED
    assert Counter(tags_of(jq)) == {f"step-{n}": 1 for n in range(1, 6)}


def tags_of(jq: JobQueue) -> list[str]:
    from sqlalchemy import text

    with jq.transaction(read_only=True) as connection:
        return list(connection.execute(text("SELECT tag FROM test_ledger")).scalars())
