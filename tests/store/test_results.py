"""A job's return value is its result: stored with its success (strict JSON), read back with
``handle.result()`` / ``await handle.aresult()``, which also say how a job that did not
succeed ended. On every backend, through the worker's own code path (``drain``)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jobqueue import (
    FailJob,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobQueue,
    job,
)
from jobqueue.calls import EnqueuedJob
from jobqueue.retry import JobCancelled
from jobqueue.schema import SUCCEEDED
from jobqueue.testing import drain


@job(name="results.report")
def report(n: int) -> dict[str, object]:
    return {"n": n, "squares": [i * i for i in range(n)], "name": "é"}


@job(name="results.async_report")
async def async_report(n: int) -> list[int]:
    return list(range(n))


@job(name="results.nothing")
def nothing() -> None:
    pass


@job(name="results.unrecordable")
def unrecordable() -> object:
    return {1, 2}  # a set: JSON cannot hold it


@job(name="results.fails", max_attempts=1)
def fails() -> None:
    raise FailJob("the report had no rows")


@job(name="results.discarded")
def discarded() -> None:
    raise JobCancelled("the customer left")


def test_a_jobs_return_value_is_its_result(jq: JobQueue) -> None:
    handles = [report.enqueue(3), async_report.enqueue(4), nothing.enqueue()]
    assert drain(jq) == {SUCCEEDED: 3}
    assert handles[0].result() == {"n": 3, "squares": [0, 1, 4], "name": "é"}
    assert handles[1].result(timeout=1) == [0, 1, 2, 3]
    assert handles[2].result() is None
    assert jq.get_job(handles[2].id).result is None  # type: ignore[union-attr]
    assert asyncio.run(handles[0].aresult(timeout=5)) == {"n": 3, "squares": [0, 1, 4], "name": "é"}


def test_a_result_json_cannot_hold_does_not_undo_the_success(jq: JobQueue) -> None:
    from structlog.testing import capture_logs

    handle = unrecordable.enqueue()
    with capture_logs() as logs:
        assert drain(jq) == {SUCCEEDED: 1}
    assert handle.result() is None
    (event,) = [e for e in logs if e["event"] == "job_result_not_recorded"]
    assert event["job_id"] == handle.id and "set" in event["error"]


def test_result_raises_how_a_job_ended_that_did_not_succeed(jq: JobQueue) -> None:
    failed, cancelled = fails.enqueue(), discarded.enqueue()
    drain(jq)
    with pytest.raises(JobFailedError, match="the report had no rows") as caught:
        failed.result()
    assert caught.value.job_id == failed.id
    assert caught.value.error is not None and "the report had no rows" in caught.value.error.message
    with pytest.raises(JobCancelledError):
        asyncio.run(cancelled.aresult())
    ghost = EnqueuedJob(
        "01J0000000000000000000GHST", "results.nothing", "default", failed.scheduled_for, jq
    )
    with pytest.raises(JobNotFoundError):
        ghost.result()


def test_result_waits_for_the_job_and_times_out_while_it_has_not_ended(jq: JobQueue) -> None:
    handle = report.enqueue(2)
    with pytest.raises(TimeoutError, match="has not ended"):
        handle.result(timeout=0.1)
    waited: list[object] = []
    waiter = threading.Thread(target=lambda: waited.append(handle.result(timeout=30)))
    waiter.start()
    drain(jq)
    waiter.join(30)
    assert waited == [{"n": 2, "squares": [0, 1], "name": "é"}]


def test_jobs_show_prints_the_result_as_json(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobqueue.cli.main import main

    handle = report.enqueue(2)
    drain(jq)
    assert main(["jobs", "show", handle.id, "--database-url", jq.database_url]) == 0
    shown = capsys.readouterr().out
    assert 'result:          {"n": 2, "squares": [0, 1], "name": "é"}' in shown
