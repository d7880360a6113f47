"""Durable steps through the worker's code path (``drain``), on every backend: a step runs once
per job across attempts, a transactional step's writes happen once, ``iterate`` resumes after
its saved cursor, ``durable_sleep`` ends the run uncounted and resumes past itself, and a stale
execution records nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text

from jobqueue import (
    AttemptSupersededError,
    JobQueue,
    durable_sleep,
    iterate,
    job,
    step,
)
from jobqueue.schema import BLOCKED, PENDING, SUCCEEDED, job_steps
from jobqueue.testing import drain, inline

from workers import wait_until

calls: Counter[str] = Counter()
failures: set[str] = set()  # "fail once" switches, consumed by the jobs below


def once(key: str) -> None:
    """Raise the first time ``key`` is met (when armed)."""
    if key in failures:
        failures.discard(key)
        raise RuntimeError(f"injected failure at {key}")


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    failures.clear()


def counted(name: str, value: Any) -> Any:
    calls[name] += 1
    return value


@job(name="steps.pipeline", backoff=0)
def pipeline(n: int) -> dict[str, Any]:
    rows = step("fetch", counted, "fetch", list(range(n)))
    total = step("sum", counted, "sum", sum(rows))
    once("after-sum")
    doubled = step("double", counted, "double", total * 2)
    return {"rows": rows, "total": total, "doubled": doubled}


def test_a_step_runs_once_across_attempts_and_the_result_uses_the_records(jq: JobQueue) -> None:
    failures.add("after-sum")
    handle = pipeline.enqueue(4)
    assert drain(jq) == {PENDING: 1, SUCCEEDED: 1}
    assert handle.result() == {"rows": [0, 1, 2, 3], "total": 6, "doubled": 12}
    assert calls == {"fetch": 1, "sum": 1, "double": 1}
    with jq.transaction(read_only=True) as connection:
        rows = (
            connection.execute(
                job_steps.select().where(job_steps.c.job_id == handle.id).order_by(job_steps.c.name)
            )
            .mappings()
            .all()
        )
    assert [(r["name"], r["attempt"], r["done"]) for r in rows] == [
        ("double", 2, True),
        ("fetch", 1, True),
        ("sum", 1, True),
    ]


def insert_order(connection: Connection, order_id: int) -> int:
    connection.execute(text("INSERT INTO step_orders (id) VALUES (:id)"), {"id": order_id})
    return order_id


@job(name="steps.transactional", backoff=0)
def transactional(order_id: int) -> int:
    step("insert", insert_order, order_id, transaction=True)
    once("after-insert")
    return order_id


def test_a_transactional_steps_writes_commit_with_its_record_once(jq: JobQueue) -> None:
    with jq.transaction() as connection:
        connection.execute(text("DROP TABLE IF EXISTS step_orders"))
        connection.execute(text("CREATE TABLE step_orders (id INTEGER PRIMARY KEY)"))
    try:
        failures.add("after-insert")
        handle = transactional.enqueue(7)
        assert drain(jq) == {PENDING: 1, SUCCEEDED: 1}
        assert handle.result() == 7
        with jq.transaction(read_only=True) as connection:
            assert connection.execute(text("SELECT id FROM step_orders")).scalars().all() == [7]
    finally:
        with jq.transaction() as connection:
            connection.execute(text("DROP TABLE step_orders"))


def test_inline_mode_runs_a_transactional_step_in_the_given_database(jq: JobQueue) -> None:
    with jq.transaction() as connection:
        connection.execute(text("DROP TABLE IF EXISTS step_orders"))
        connection.execute(text("CREATE TABLE step_orders (id INTEGER PRIMARY KEY)"))
    try:
        with inline(jobqueue=jq) as runs:
            handle = transactional.enqueue(9)
        assert handle.result() == 9 and runs[0].steps == {"insert": 9}
        with jq.transaction(read_only=True) as connection:
            assert connection.execute(text("SELECT id FROM step_orders")).scalars().all() == [9]
            assert connection.execute(job_steps.select()).all() == []  # recorded in memory only
    finally:
        with jq.transaction() as connection:
            connection.execute(text("DROP TABLE step_orders"))


@job(name="steps.walk", backoff=0)
def walk(count: int) -> int:
    handled = 0
    for item in iterate(
        "items",
        lambda cursor: range(0 if cursor is None else cursor + 1, count),
        key=lambda i: i,
        every=3,
    ):
        calls[f"item-{item}"] += 1
        once(f"item-{item}")
        handled += 1
    return handled


def test_iterate_resumes_after_its_saved_cursor(jq: JobQueue) -> None:
    failures.add("item-7")
    handle = walk.enqueue(10)
    assert drain(jq) == {PENDING: 1, SUCCEEDED: 1}
    # Saved after items 2 and 5: the failure at 7 makes 6 and 7 run again, nothing earlier.
    assert {i: calls[f"item-{i}"] for i in range(10)} == {
        0: 1,
        1: 1,
        2: 1,
        3: 1,
        4: 1,
        5: 1,
        6: 2,
        7: 2,
        8: 1,
        9: 1,
    }
    assert handle.result() == 4  # the second run handled 6, 7, 8, 9
    with jq.transaction(read_only=True) as connection:
        row = connection.execute(job_steps.select()).mappings().one()
    assert (row["name"], row["done"], row["value"]) == ("items", True, "9")


@job(name="steps.nap")
def nap(seconds: float) -> str:
    before = step("before", counted, "before", "early")
    durable_sleep("nap", timedelta(seconds=seconds))
    after = step("after", counted, "after", "late")
    return f"{before} {after}"


def test_durable_sleep_ends_the_run_uncounted_and_resumes_past_itself(jq: JobQueue) -> None:
    handle = nap.enqueue(0.3)
    started = datetime.now(UTC)
    assert drain(jq) == {"sleeping": 1}
    row = handle.fetch()
    assert row is not None and (row.status, row.failed_attempts, row.last_error) == (
        PENDING,
        0,
        None,
    )
    assert row.scheduled_for >= started + timedelta(seconds=0.3)
    # Not due before its wake time; then it runs on, past the sleep, without the first step.
    wait_until(lambda: drain(jq) == {SUCCEEDED: 1}, 30, "the job to wake and finish")
    assert datetime.now(UTC) >= started + timedelta(seconds=0.3)
    assert handle.result() == "early late"
    assert calls == {"before": 1, "after": 1}
    assert handle.fetch().failed_attempts == 0  # type: ignore[union-attr]


@job(name="steps.exclusive_nap", concurrency_limit=1, concurrency_key="account-1")
def exclusive_nap(tag: str) -> str:
    step("debit", counted, f"debit-{tag}", None)
    durable_sleep("settle", timedelta(seconds=0.3))
    step("credit", counted, f"credit-{tag}", None)
    return tag


def test_a_sleeping_job_keeps_its_concurrency_slot(jq: JobQueue) -> None:
    """The limit is on jobs in progress, and a job between its steps is in progress: while the
    first job of the key sleeps, the second stays blocked, so their steps never interleave."""
    first = exclusive_nap.enqueue("a")
    second = exclusive_nap.enqueue("b")
    assert second.fetch().status == BLOCKED  # type: ignore[union-attr]
    assert drain(jq) == {"sleeping": 1}
    assert (first.fetch().status, second.fetch().status) == (PENDING, BLOCKED)  # type: ignore[union-attr]
    wait_until(lambda: drain(jq, max_jobs=1) == {SUCCEEDED: 1}, 30, "the first job to finish")
    assert first.result() == "a"
    assert calls == {"debit-a": 1, "credit-a": 1}  # b had not begun
    assert drain(jq) == {"sleeping": 1}  # the slot passed to b
    wait_until(lambda: drain(jq) == {SUCCEEDED: 1}, 30, "the second job to finish")
    assert second.result() == "b"


@job(name="steps.superseded", backoff=0, max_attempts=2)
def superseded() -> None:
    from jobqueue import current_job, get_default_queue
    from jobqueue.runtime.maintenance import rescue_orphans
    from jobqueue.store import attempts, processes

    running = current_job()
    assert running is not None
    database = get_default_queue()
    with database.transaction() as connection:  # this worker is declared dead meanwhile...
        attempts.mark_started(connection, process_id=running.claimed_by, fences=[running.fence])
        processes.deregister(connection, running.claimed_by)
    rescue_orphans(database)  # ...and its job rescued
    step("too-late", counted, "too-late", 1)


def test_a_stale_execution_records_no_step(jq: JobQueue) -> None:
    handle = superseded.enqueue()
    drain(jq, max_jobs=1)
    with jq.transaction(read_only=True) as connection:
        assert connection.execute(job_steps.select()).first() is None
    row = handle.fetch()
    assert row is not None and row.status == PENDING  # rescued, its stale write refused
    assert "AttemptSupersededError" not in (row.last_error or "")  # the rescue's error stands
    assert calls == {"too-late": 1}


def test_step_names_are_unique_and_steps_outside_a_worker_just_run() -> None:
    assert step("alone", counted, "alone", 5) == 5
    assert list(iterate("alone-items", lambda cursor: [1, 2], key=lambda i: i)) == [1, 2]
    durable_sleep("alone-nap", timedelta(hours=1))  # returns at once outside a worker
    with pytest.raises(ValueError, match="1 to 255"):
        step("", counted, "x", 1)
    with pytest.raises(RuntimeError, match="inside a worker"):
        step("tx", insert_order, 1, transaction=True)
    assert AttemptSupersededError.__mro__[1].__name__ == "JobQueueError"


def test_a_stopping_workers_signal_reaches_only_the_jobs_it_runs(jq: JobQueue) -> None:
    """A worker that stops gracefully releases its own jobs at their next step; a job run by
    anything else in the same process (drain, another worker) is not affected. (It once was:
    a process-wide flag left set by an in-process worker made drain release a job for ever.)"""
    import threading

    from jobqueue.runtime import execution
    from jobqueue.runtime.execution import RELEASED
    from jobqueue.runtime.lifecycle import register
    from jobqueue.store import claims

    first, second = pipeline.enqueue(2), pipeline.enqueue(3)
    with jq.transaction() as connection:
        register(connection, process_id="stopping-worker", kind="worker")
    with jq.transaction() as connection:
        (claimed,) = claims.claim_jobs(
            connection, process_id="stopping-worker", queues=None, limit=1, now=datetime.now(UTC)
        )
    stop = threading.Event()
    stop.set()
    outcome = execution.run_sync(claimed, jq, stop)
    assert claimed.id == first.id and outcome.status == RELEASED
    assert calls == {}  # released before its first step ran
    assert drain(jq) == {SUCCEEDED: 1}  # the other job, in this process, runs to the end
    assert second.result() == {"rows": [0, 1, 2], "total": 3, "doubled": 6}
