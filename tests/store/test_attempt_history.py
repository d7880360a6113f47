"""The attempt history (``job_errors``): every counted failed attempt keeps its error record and
the process that ran it, written with the fenced write that counts it; a stale write adds
nothing; the history goes with its job."""

from __future__ import annotations

import json
from datetime import timedelta

from jobqueue import JobQueue, job
from jobqueue.schema import FAILED, PENDING, SUCCEEDED, job_errors
from jobqueue.store.history import failed_attempts
from jobqueue.testing import drain

runs: list[int] = []


@job(name="history.flaky", backoff=0, max_attempts=3)
def flaky(fail_times: int) -> str:
    runs.append(1)
    if len(runs) <= fail_times:
        raise ValueError(f"failure {len(runs)}")
    return "ok"


def history(jq: JobQueue, job_id: str) -> list[tuple[int, str, str]]:
    with jq.transaction(read_only=True) as connection:
        return [
            (a.attempt, json.loads(a.error)["type"], json.loads(a.error)["message"])
            for a in failed_attempts(connection, job_id)
        ]


def test_each_failed_attempt_is_kept_in_order_with_its_process(jq: JobQueue) -> None:
    runs.clear()
    handle = flaky.enqueue(2)
    assert drain(jq) == {PENDING: 2, SUCCEEDED: 1}
    assert history(jq, handle.id) == [
        (1, "builtins.ValueError", "failure 1"),
        (2, "builtins.ValueError", "failure 2"),
    ]
    with jq.transaction(read_only=True) as connection:
        processes = {a.process_id for a in failed_attempts(connection, handle.id)}
    assert len(processes) == 1 and len(processes.pop()) == 26  # the one drain() that ran both
    row = handle.fetch()
    assert row is not None and json.loads(row.last_error or "{}")["message"] == "failure 2"


def test_a_job_that_uses_up_its_attempts_has_one_entry_per_attempt(jq: JobQueue) -> None:
    runs.clear()
    handle = flaky.enqueue(5)
    assert drain(jq) == {PENDING: 2, FAILED: 1}
    assert [attempt for attempt, _, _ in history(jq, handle.id)] == [1, 2, 3]


def test_the_history_goes_with_its_job(jq: JobQueue) -> None:
    runs.clear()
    discarded = flaky.enqueue(5)
    drain(jq)
    runs.clear()
    pruned = flaky.enqueue(1)
    drain(jq)
    assert jq.admin.discard([discarded.id]) == [discarded.id]
    assert jq.admin.prune(status=SUCCEEDED, older_than=timedelta(0)) == 1
    with jq.transaction(read_only=True) as connection:
        assert connection.execute(job_errors.select()).all() == []
    assert history(jq, pruned.id) == []
