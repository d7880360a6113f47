"""Concurrency limits: at most N running per key; the rest wait as blocked and are promoted in
order as slots free up, in the same transaction that frees them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from jobqueue import JobQueue, job
from jobqueue.runtime import lifecycle
from jobqueue.schema import (
    BLOCKED,
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    job_semaphores,
)
from jobqueue.store import claims
from jobqueue.testing import drain


@job(name="conc.limited", concurrency_limit=2)
def limited(n: int) -> None: ...


@job(
    name="conc.per_tenant",
    concurrency_key=lambda tenant, n: f"tenant-{tenant}",
    concurrency_limit=1,
)
def per_tenant(tenant: str, n: int) -> None: ...


@job(name="conc.failing", concurrency_limit=1, max_attempts=1)
def failing() -> None:
    raise RuntimeError("x")


def statuses(jq: JobQueue, ids: list[str]) -> list[str]:
    return [jq.get_job(job_id).status for job_id in ids]  # type: ignore[union-attr]


def held(jq: JobQueue, key: str) -> int:
    with jq.transaction(read_only=True) as connection:
        value = connection.execute(
            select(job_semaphores.c.held).where(job_semaphores.c.key == key)
        ).scalar()
    return int(value or 0)


def test_jobs_over_the_limit_wait_blocked_and_are_promoted_oldest_first(jq: JobQueue) -> None:
    ids = [limited.enqueue(i).id for i in range(5)]
    assert statuses(jq, ids) == [PENDING, PENDING, BLOCKED, BLOCKED, BLOCKED]
    assert drain(jq, max_jobs=1) == {SUCCEEDED: 1}
    assert statuses(jq, ids) == [SUCCEEDED, PENDING, PENDING, BLOCKED, BLOCKED]
    assert held(jq, "conc.limited") == 2
    assert drain(jq) == {SUCCEEDED: 4}
    assert held(jq, "conc.limited") == 0


def test_the_key_can_come_from_the_arguments(jq: JobQueue) -> None:
    a1, a2, b1 = (per_tenant.enqueue(t, n).id for t, n in (("a", 1), ("a", 2), ("b", 1)))
    assert statuses(jq, [a1, a2, b1]) == [PENDING, BLOCKED, PENDING]
    row = jq.get_job(a2)
    assert row is not None and row.concurrency_key == "tenant-a"


def test_a_final_failure_frees_the_slot(jq: JobQueue) -> None:
    first, second = failing.enqueue().id, failing.enqueue().id
    assert statuses(jq, [first, second]) == [PENDING, BLOCKED]
    drain(jq, max_jobs=1)
    assert statuses(jq, [first, second]) == [FAILED, PENDING]


def test_cancel_and_operator_retry_respect_the_slots(jq: JobQueue) -> None:
    first, second, third = (failing.enqueue().id for _ in range(3))
    result = jq.admin.cancel([first, third])  # first holds the slot, third waits
    assert (result.cancelled, held(jq, "conc.failing")) == ([first, third], 1)
    assert statuses(jq, [first, second, third]) == [CANCELLED, PENDING, CANCELLED]
    assert jq.admin.retry([first]) == [first]
    assert statuses(jq, [first, second]) == [BLOCKED, PENDING]  # second still holds the slot
    drain(jq)
    assert statuses(jq, [first, second]) == [FAILED, FAILED]
    assert held(jq, "conc.failing") == 0


def test_a_rescued_job_that_fails_for_good_frees_its_slot(jq: JobQueue) -> None:
    from jobqueue.runtime.maintenance import rescue_orphans
    from jobqueue.store import attempts, processes

    first, second = failing.enqueue().id, failing.enqueue().id
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id="doomed", kind="worker")
    with jq.transaction() as connection:
        (claimed,) = claims.claim_jobs(
            connection, process_id="doomed", queues=None, limit=1, now=datetime.now(UTC)
        )
        attempts.mark_started(connection, process_id="doomed", fences=[claimed.fence])
        processes.deregister(connection, "doomed")
    assert claimed.id == first
    assert rescue_orphans(jq) == 1  # max_attempts=1: the interrupted attempt was its last
    assert statuses(jq, [first, second]) == [FAILED, PENDING]


def test_limit_changes_take_effect_as_slots_free(jq: JobQueue) -> None:
    ids = [limited.enqueue(i).id for i in range(3)]
    with jq.transaction() as connection:
        connection.execute(update(job_semaphores).values(max_running=1))
    drain(jq, max_jobs=1)  # two were running under the old limit: no promotion yet
    assert statuses(jq, ids) == [SUCCEEDED, PENDING, BLOCKED]
    drain(jq, max_jobs=1)
    assert statuses(jq, ids) == [SUCCEEDED, SUCCEEDED, PENDING]
    assert held(jq, "conc.limited") == 1
    assert jq.count_jobs(status=BLOCKED) == 0
