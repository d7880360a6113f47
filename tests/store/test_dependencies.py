"""``depends_on``: a dependent waits (status ``waiting``, never claimed) until its last
dependency finishes, in the transaction that finishes it; a dependency that did not succeed
cancels it (transitively) or lets it run, as it said. On every backend, through the worker's
own outcome path (``drain``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobqueue import (
    FailJob,
    JobQueue,
    batch,
    dependency_results,
    job,
)
from jobqueue.error_record import ErrorRecord
from jobqueue.runtime import lifecycle
from jobqueue.runtime.execution import SUCCESS
from jobqueue.runtime.outcomes import Record, write_records
from jobqueue.schema import BLOCKED, CANCELLED, FAILED, PENDING, SUCCEEDED, WAITING
from jobqueue.store import claims
from jobqueue.testing import drain

ran: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


@job(name="deps.step")
def step(label: str) -> str:
    ran.append(label)
    return label.upper()


@job(name="deps.join")
def join(label: str) -> dict[str, Any]:
    ran.append(label)
    return dependency_results()


@job(name="deps.fails", max_attempts=1)
def fails(label: str) -> None:
    ran.append(label)
    raise FailJob(f"{label} failed")


@job(name="deps.limited", concurrency_limit=1)
def limited(label: str) -> None:
    ran.append(label)


def status(jq: JobQueue, handle: Any) -> str:
    record = jq.get_job(handle.id)
    assert record is not None
    return record.status


def test_a_diamond_runs_the_join_once_after_both_with_both_results(jq: JobQueue) -> None:
    a = step.enqueue("a")
    b = step.using(depends_on=[a]).enqueue("b")
    c = step.using(depends_on=[a]).enqueue("c")
    d = join.using(depends_on=[b, c]).enqueue("d")
    assert [status(jq, h) for h in (a, b, c, d)] == [PENDING, WAITING, WAITING, WAITING]
    assert [j.id for j in jq.due_jobs()] == [a.id]  # no claim looks at a waiting job
    drain(jq)
    assert ran[0] == "a" and sorted(ran[1:3]) == ["b", "c"] and ran[3:] == ["d"]
    assert d.result() == {b.id: "B", c.id: "C"}
    record = jq.get_job(d.id)
    assert record is not None and record.open_dependencies is None


def test_a_failed_dependency_cancels_its_dependents_down_the_graph(jq: JobQueue) -> None:
    a = fails.enqueue("a")
    cancelled = step.using(depends_on=[a]).enqueue("cancelled")
    below = step.using(depends_on=[cancelled]).enqueue("below")
    runs_anyway = join.using(depends_on=[a], on_dependency_failure="run").enqueue("anyway")
    drain(jq)
    assert sorted(ran) == ["a", "anyway"]
    assert [status(jq, h) for h in (a, cancelled, below, runs_anyway)] == [
        FAILED,
        CANCELLED,
        CANCELLED,
        SUCCEEDED,
    ]
    assert runs_anyway.result() == {}  # a failed: no result to pass on
    record = jq.get_job(below.id)
    assert record is not None and record.last_error is not None
    error = ErrorRecord.parse(record.last_error)
    assert error.type == "jobqueue.DependencyFailed" and cancelled.id in error.message


def test_dependencies_that_already_finished_are_settled_at_enqueue(jq: JobQueue) -> None:
    done, failed = step.enqueue("done"), fails.enqueue("failed")
    drain(jq)
    due = join.using(depends_on=[done]).enqueue("due")
    gone = step.using(depends_on=[done, failed]).enqueue("gone")
    anyway = join.using(depends_on=[failed, done], on_dependency_failure="run").enqueue("anyway")
    assert [status(jq, h) for h in (due, gone, anyway)] == [PENDING, CANCELLED, PENDING]
    drain(jq)
    assert due.result() == {done.id: "DONE"}
    assert anyway.result() == {done.id: "DONE"}
    assert "gone" not in ran


def test_a_dependency_retried_by_an_operator_does_not_count_twice(jq: JobQueue) -> None:
    """The dependent awaits ``failed`` (which it lets pass) and ``later``: ``failed`` failing
    twice (an operator's retry between) must not stand in for ``later``."""
    failed = fails.enqueue("failed")
    later = step.enqueue_in(timedelta(hours=1), "later")
    dependent = step.using(depends_on=[failed, later], on_dependency_failure="run").enqueue("d")
    drain(jq)
    assert jq.admin.retry([failed.id]) == [failed.id]
    drain(jq)
    assert ran == ["failed", "failed"]
    assert status(jq, dependent) == WAITING
    record = jq.get_job(dependent.id)
    assert record is not None and record.open_dependencies == 1


def test_a_waiting_job_with_a_concurrency_limit_takes_a_slot_when_it_starts(
    jq: JobQueue,
) -> None:
    holder = limited.enqueue("holder")  # the oldest: the first claim takes it
    a = step.enqueue("a")
    second = limited.using(depends_on=[a]).enqueue("second")
    assert status(jq, second) == WAITING
    with jq.transaction() as connection:  # a worker starts "holder": the key's only slot
        lifecycle.register(connection, process_id="p", kind="worker")
        (running,) = claims.claim_jobs(
            connection, process_id="p", queues=None, limit=1, now=datetime.now(UTC)
        )
    assert running.id == holder.id
    drain(jq, max_jobs=1)  # "a" ends: "second" is due, and waits for the slot
    assert ran == ["a"] and status(jq, second) == BLOCKED
    with jq.transaction() as connection:  # "holder" ends, as its worker would write it
        write_records(connection, "p", [Record(running, SUCCESS)], datetime.now(UTC))
    drain(jq)
    assert ran == ["a", "second"] and status(jq, second) == SUCCEEDED


def test_cancelling_a_waiting_job_cancels_what_depends_on_it(jq: JobQueue) -> None:
    a = step.enqueue_in(timedelta(hours=1), "a")
    b = step.using(depends_on=[a]).enqueue("b")
    c = step.using(depends_on=[b]).enqueue("c")
    result = jq.admin.cancel([b.id])
    assert b.id in result.cancelled
    assert [status(jq, h) for h in (a, b, c)] == [PENDING, CANCELLED, CANCELLED]


def test_bad_dependencies_are_refused_and_nothing_is_written(jq: JobQueue) -> None:
    from ulid import ULID

    with pytest.raises(ValueError, match="no job or batch"):
        step.using(depends_on=[str(ULID())]).enqueue("x")
    with pytest.raises(TypeError, match="list"):
        step.using(depends_on="01ARZ3NDEKTSV4RRFFQ69G5FAV").enqueue("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a job or batch"):
        step.using(depends_on=["nope"]).enqueue("x")
    with pytest.raises(ValueError, match="cancel' or 'run"):
        step.using(on_dependency_failure="skip").enqueue("x")
    with pytest.raises(ValueError, match="member of batch"), batch() as b:
        step.using(depends_on=[b]).enqueue("x")
    assert jq.count_jobs() == 0


def test_a_job_can_wait_for_a_whole_batch(jq: JobQueue) -> None:
    with batch(on_complete=step.call("callback")) as b:
        step.enqueue("member")
    after = join.using(depends_on=[b]).enqueue("after")
    assert status(jq, after) == WAITING
    drain(jq)
    assert ran == ["member", "callback", "after"]  # the batch ends after its callbacks
    assert after.result() == {}  # a batch has no result


@job(name="deps.unique", unique=True)
def unique_step(label: str) -> None:
    ran.append(label)


def test_a_job_cancelled_at_enqueue_lets_its_unique_key_go(jq: JobQueue) -> None:
    failed = fails.enqueue("failed")
    drain(jq)
    gone = unique_step.using(depends_on=[failed]).enqueue("same")
    assert status(jq, gone) == CANCELLED
    again = unique_step.enqueue("same")  # the key is free: a new job, not the cancelled one
    assert not again.existing and again.id != gone.id and status(jq, again) == PENDING


def test_a_cycle_through_a_batch_is_refused(jq: JobQueue) -> None:
    with batch() as b:
        step.enqueue_in(timedelta(hours=1), "member")
    outside = step.using(depends_on=[b]).enqueue("waits for the batch")
    below = step.using(depends_on=[outside]).enqueue("waits for that one")
    with pytest.raises(ValueError, match=r"waits .* for a batch this job is a member of"):
        b.add(step.using(depends_on=[below]).call("would close the cycle"))
    record = b.fetch()
    assert record is not None and record.total == 1  # nothing was added
