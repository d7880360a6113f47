"""Running jobs through the worker's code path (``jobqueue.testing.drain``) on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import (
    FailJob,
    Job,
    JobArgumentsError,
    JobCall,
    JobQueue,
    RetryJob,
    current_job,
    job,
    on_failure,
)
from jobqueue.context import _global_failure_hooks
from jobqueue.schema import CANCELLED, FAILED, PENDING, SUCCEEDED
from jobqueue.testing import drain, inline

calls: list[object] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


seen: list[tuple[int, int]] = []


@job(name="exec.attempt_probe", backoff=0)
def attempt_probe() -> None:
    job = current_job()
    assert job is not None
    seen.append((job.attempt, job.attempts))
    if job.attempt == 1:
        raise RuntimeError("fail the first attempt")


keys: dict[tuple[str, int], str] = {}


@job(name="exec.key_probe", backoff=0)
def key_probe() -> None:
    job = current_job()
    assert job is not None
    keys[(job.id, job.attempt)] = job.idempotency_key
    if job.attempt == 1:
        raise RuntimeError("fail once")


@job(name="exec.record")
def record(value: object) -> None:
    calls.append(value)


@job(name="exec.type_error_inside", backoff=0)
def type_error_inside() -> None:
    len(5)  # type: ignore[arg-type]


class ClassProbe(Job, name="exec.class_probe"):
    def perform(self, value: int) -> None:
        pass


@job(name="exec.boom", max_attempts=3, backoff=0)
def boom() -> None:
    raise ValueError("boom")


@job(name="exec.async")
async def async_record(value: object) -> None:
    calls.append(("async", value))


class Tagged(Job, name="exec.Tagged"):
    def perform(self, tag: str) -> None:
        current = current_job()
        assert current is not None
        calls.append((tag, current.name, current.attempts))


def last_error(jq: JobQueue, job_id: str) -> dict[str, str]:
    row = jq.get_job(job_id)
    assert row is not None and row.last_error is not None
    return json.loads(row.last_error)  # type: ignore[no-any-return]


def test_success_is_recorded(jq: JobQueue) -> None:
    handle = record.enqueue({"x": [1, 2]})
    assert drain(jq) == {SUCCEEDED: 1}
    row = jq.get_job(handle.id)
    assert row is not None
    assert (row.status, row.attempts, row.failed_attempts) == (SUCCEEDED, 1, 0)
    assert row.finished_at is not None and calls == [{"x": [1, 2]}]


def test_async_and_class_jobs_run(jq: JobQueue) -> None:
    async_record.enqueue(1)
    Tagged.enqueue("t")
    assert drain(jq) == {SUCCEEDED: 2}
    assert sorted(map(str, calls)) == sorted(map(str, [("async", 1), ("t", "exec.Tagged", 1)]))


def test_failures_retry_until_max_attempts_then_fail(jq: JobQueue) -> None:
    handle = boom.enqueue()  # backoff=0: each retry is due at once
    assert drain(jq) == {PENDING: 2, FAILED: 1}
    row = jq.get_job(handle.id)
    assert row is not None and (row.status, row.attempts, row.failed_attempts) == (FAILED, 3, 3)
    error = last_error(jq, handle.id)
    assert error["type"] == "builtins.ValueError" and error["message"] == "boom"
    assert "raise ValueError" in error["traceback"]


def test_an_unknown_job_name_waits_for_a_worker_that_knows_it_without_using_attempts(
    jq: JobQueue,
) -> None:
    """Not the job's failure but this worker's ignorance (a deploy in progress): the attempt
    is recorded with its error and the job goes back later, never failed for it. (It used to
    count a failed attempt, and 25 of them failed the job.)"""
    handle = jq.enqueue_many([JobCall("not.registered.anywhere", args=[1], max_attempts=1)])[0]
    assert drain(jq) == {"snoozed": 1}
    error = last_error(jq, handle.id)
    assert error["type"] == "jobqueue.errors.UnknownJobError"
    assert "not.registered.anywhere" in error["message"]
    row = jq.get_job(handle.id)
    assert row is not None and (row.status, row.failed_attempts, row.attempts) == (PENDING, 0, 1)
    assert row.scheduled_for > datetime.now(UTC)  # later, backing off up to an hour


def test_arguments_that_do_not_fit_the_signature_are_refused_at_enqueue(jq: JobQueue) -> None:
    """Where the job's code is imported, a call that could only fail is refused before
    anything is written, by every enqueue path (a TypeError, as calling the function would)."""
    attempts = [
        lambda: record.enqueue(1, 2, 3),  # type: ignore[call-arg]
        lambda: record.enqueue(),  # type: ignore[call-arg]
        lambda: record.enqueue(1, nope=2),  # type: ignore[call-arg]
        lambda: record.using(queue="other").enqueue(1, 2),  # type: ignore[call-arg]
        lambda: record.enqueue_in(timedelta(seconds=1)),  # type: ignore[call-arg]
        lambda: jq.enqueue_many([record.call(1), JobCall("exec.record", args=(1, 2))]),
        lambda: ClassProbe.enqueue(),  # type: ignore[call-arg]
    ]
    for attempt in attempts:
        with pytest.raises(JobArgumentsError, match="do not fit the job") as caught:
            attempt()
        assert isinstance(caught.value, TypeError)
    assert jq.count_jobs() == 0
    assert "exec.record" in str(caught.value) or "exec.class_probe" in str(caught.value)


def test_arguments_that_no_longer_fit_fail_at_once_without_retrying(jq: JobQueue) -> None:
    """The row's arguments do not fit the code the worker has (the producer had no code to
    check them against, or the job's signature changed since): no retry can fix that, so the
    attempt fails for good, with an error that says why. A TypeError raised inside a job
    that was called correctly is still an ordinary, retried failure."""
    handle = record.enqueue(1)
    with jq.transaction() as connection:
        connection.execute(
            jq_table().update().where(jq_table().c.id == handle.id).values(args='{"args":[1,2]}')
        )
    inner = type_error_inside.enqueue()
    assert drain(jq, max_jobs=2) == {FAILED: 1, PENDING: 1}
    error = last_error(jq, handle.id)
    assert error["type"] == "jobqueue.errors.JobArgumentsError"
    assert "positional argument" in error["message"]
    assert jq.get_job(inner.id).status == PENDING  # type: ignore[union-attr]


def test_undecodable_row_fails_the_attempt(jq: JobQueue) -> None:
    handle = record.enqueue(1)
    with jq.transaction() as connection:
        connection.execute(
            jq_table().update().where(jq_table().c.id == handle.id).values(args="{not json")
        )
    assert drain(jq) == {PENDING: 1}
    assert "not valid JSON" in last_error(jq, handle.id)["message"]


def jq_table():  # type: ignore[no-untyped-def]
    from jobqueue.schema import job_queue

    return job_queue


def test_job_controls_its_retry(jq: JobQueue) -> None:
    at = datetime.now(UTC) + timedelta(hours=3)

    @job(name="exec.later")
    def later() -> None:
        raise RetryJob("rate limited", at=at)

    @job(name="exec.never")
    def never() -> None:
        raise FailJob("bad input")

    h1, h2 = later.enqueue(), never.enqueue()
    assert drain(jq) == {PENDING: 1, FAILED: 1}
    assert jq.get_job(h1.id).scheduled_for == at  # type: ignore[union-attr]
    assert jq.get_job(h2.id).failed_attempts == 1  # type: ignore[union-attr]


def test_retry_on_and_discard_on(jq: JobQueue) -> None:
    @job(name="exec.picky", retry_on=ConnectionError, discard_on=(KeyError,))
    def picky(kind: str) -> None:
        raise {"conn": ConnectionError, "key": KeyError, "other": ValueError}[kind]("x")

    ids = {kind: picky.enqueue(kind).id for kind in ("conn", "key", "other")}
    assert drain(jq) == {PENDING: 1, CANCELLED: 1, FAILED: 1}
    assert jq.get_job(ids["conn"]).status == PENDING  # type: ignore[union-attr]
    assert jq.get_job(ids["key"]).status == CANCELLED  # type: ignore[union-attr]
    assert jq.get_job(ids["other"]).status == FAILED  # type: ignore[union-attr]


def test_system_exit_in_a_job_is_a_recorded_failure(jq: JobQueue) -> None:
    @job(name="exec.exit", max_attempts=1)
    def leaves() -> None:
        raise SystemExit(3)

    handle = leaves.enqueue()
    assert drain(jq) == {FAILED: 1}
    assert last_error(jq, handle.id)["type"] == "builtins.SystemExit"


def test_hooks_are_called_and_their_errors_contained(jq: JobQueue) -> None:
    seen: list[tuple[str, str]] = []

    def per_job(job: object, error: BaseException) -> None:
        seen.append(("retry", type(error).__name__))

    @job(name="exec.hooked", max_attempts=2, backoff=0, on_retry=per_job)
    def hooked() -> None:
        raise ValueError("x")

    def global_hook(job: object, error: BaseException) -> None:
        seen.append(("failure", type(error).__name__))
        raise RuntimeError("a broken reporter")

    on_failure(global_hook)
    try:
        hooked.enqueue()
        drain(jq)
        drain(jq)
    finally:
        _global_failure_hooks.remove(global_hook)
    assert seen == [("retry", "ValueError"), ("failure", "ValueError")]


def test_inline_mode_runs_at_enqueue_without_a_database() -> None:
    with inline():
        record.enqueue("now")
        async_record.enqueue("too")
        with pytest.raises(ValueError, match="boom"):
            boom.enqueue()
    assert calls == ["now", ("async", "too")]


def test_an_error_that_cannot_be_described_is_still_recorded(jq: JobQueue) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    @job(name="exec.unprintable")
    def unprintable() -> None:
        raise Unprintable()

    handle = unprintable.enqueue()
    assert drain(jq) == {PENDING: 1}
    assert "could not be recorded in full" in last_error(jq, handle.id)["message"]


def test_drain_prints_no_line_per_succeeded_job(jq: JobQueue) -> None:
    """An app whose structlog is not configured would see every DEBUG event in its test
    output; a success is in drain's returned counts instead. A fresh interpreter: the host
    app's never-configured structlog, not this suite's."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        from jobqueue import JobCall, JobQueue, job
        from jobqueue.testing import drain

        @job(name="exec.quiet")
        def quiet() -> None: ...

        jq = JobQueue(sys.argv[1])
        jq.enqueue_many([JobCall("exec.quiet")])
        print(dict(drain(jq)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, jq.database_url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'succeeded': 1}", done.stdout + done.stderr
    assert "job_succeeded" not in done.stdout + done.stderr


def test_current_job_attempt_is_the_number_the_logs_show(jq: JobQueue) -> None:
    seen.clear()
    attempt_probe.using(jobqueue=jq).enqueue()
    assert drain(jq) == {"pending": 1, "succeeded": 1}  # backoff 0: the retry is due at once
    assert seen == [(1, 1), (2, 2)]  # (attempt, attempts)


def test_the_idempotency_key_is_stable_across_attempts_and_distinct_per_job(jq: JobQueue) -> None:
    keys.clear()
    first = key_probe.using(jobqueue=jq).enqueue()
    second = key_probe.using(jobqueue=jq).enqueue()
    drain(jq)  # each fails once (backoff 0) and succeeds on its second attempt
    assert sorted(keys) == sorted([(first.id, 1), (first.id, 2), (second.id, 1), (second.id, 2)])
    assert keys[(first.id, 1)] == keys[(first.id, 2)]  # every attempt of a job: one key
    assert keys[(second.id, 1)] == keys[(second.id, 2)]
    assert keys[(first.id, 1)] != keys[(second.id, 1)]  # and each job its own
