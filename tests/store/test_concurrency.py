"""Concurrency limits: at most N running per key. Jobs of a key wait as blocked and take a slot
when they start (the claim), so a scheduled job or a retry waiting out its backoff holds none;
every way out of running gives the slot back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from ulid import ULID

from jobqueue import JobCall, JobQueue, job
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


@job(name="conc.backing_off", concurrency_limit=1, backoff=3600)
def backing_off() -> None:
    raise RuntimeError("x")


def statuses(jq: JobQueue, ids: list[str]) -> list[str]:
    return [jq.get_job(job_id).status for job_id in ids]  # type: ignore[union-attr]


def held(jq: JobQueue, key: str) -> int:
    with jq.transaction(read_only=True) as connection:
        value = connection.execute(
            select(job_semaphores.c.held).where(job_semaphores.c.key == key)
        ).scalar()
    return int(value or 0)


def claim(jq: JobQueue, limit: int = 10) -> list[str]:
    """What one claim by a registered worker takes (ids, in run order)."""
    process_id = str(ULID())
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id=process_id, kind="worker")
    with jq.transaction() as connection:
        jobs = claims.claim_jobs(
            connection, process_id=process_id, queues=None, limit=limit, now=datetime.now(UTC)
        )
    return [job.id for job in jobs]


def test_jobs_wait_blocked_and_a_claim_starts_no_more_than_the_limit(jq: JobQueue) -> None:
    ids = [limited.enqueue(i).id for i in range(5)]
    assert statuses(jq, ids) == [BLOCKED] * 5  # no slot is taken before the start
    assert held(jq, "conc.limited") == 0
    assert claim(jq) == ids[:2]  # oldest first, two at most
    assert held(jq, "conc.limited") == 2
    assert claim(jq) == []  # the key is full
    assert drain(jq) == {}  # so is it for drain's claim
    with jq.transaction() as connection:  # the held ones end (as a worker would write it)
        connection.execute(
            update(job_semaphores).where(job_semaphores.c.key == "conc.limited").values(held=0)
        )
    assert drain(jq) == {SUCCEEDED: 3}
    assert held(jq, "conc.limited") == 0


def test_the_key_can_come_from_the_arguments(jq: JobQueue) -> None:
    a1, a2, b1 = (per_tenant.enqueue(t, n).id for t, n in (("a", 1), ("a", 2), ("b", 1)))
    assert statuses(jq, [a1, a2, b1]) == [BLOCKED] * 3
    assert sorted(claim(jq)) == sorted([a1, b1])
    row = jq.get_job(a2)
    assert row is not None and row.concurrency_key == "tenant-a"


def test_a_final_failure_frees_the_slot(jq: JobQueue) -> None:
    first, second = failing.enqueue().id, failing.enqueue().id
    drain(jq, max_jobs=1)
    assert statuses(jq, [first, second]) == [FAILED, BLOCKED]
    assert held(jq, "conc.failing") == 0
    drain(jq)
    assert statuses(jq, [first, second]) == [FAILED, FAILED]


def test_a_retry_waiting_out_its_backoff_and_a_scheduled_job_hold_no_slot(jq: JobQueue) -> None:
    retried = backing_off.enqueue().id
    assert drain(jq, max_jobs=1) == {PENDING: 1}  # failed, retried in an hour
    assert statuses(jq, [retried]) == [BLOCKED] and held(jq, "conc.backing_off") == 0
    later = backing_off.enqueue_in(timedelta(hours=1)).id
    due = backing_off.enqueue().id
    assert claim(jq) == [due]  # neither the retry nor the scheduled job is in the way
    assert statuses(jq, [retried, later]) == [BLOCKED, BLOCKED]


def test_cancel_and_operator_retry_respect_the_slots(jq: JobQueue) -> None:
    first, second, third = (failing.enqueue().id for _ in range(3))
    result = jq.admin.cancel([first, third])
    assert (result.cancelled, held(jq, "conc.failing")) == ([first, third], 0)
    assert statuses(jq, [first, second, third]) == [CANCELLED, BLOCKED, CANCELLED]
    assert jq.admin.retry([first]) == [first]
    assert statuses(jq, [first, second]) == [BLOCKED, BLOCKED]  # it waits for its key again
    drain(jq)
    assert statuses(jq, [first, second]) == [FAILED, FAILED]
    assert held(jq, "conc.failing") == 0


def test_a_rescued_job_frees_its_slot(jq: JobQueue) -> None:
    from jobqueue.runtime.maintenance import rescue_orphans
    from jobqueue.store import attempts, processes

    first, second = failing.enqueue().id, failing.enqueue().id
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id="doomed", kind="worker")
    with jq.transaction() as connection:
        (claimed,) = claims.claim_jobs(
            connection, process_id="doomed", queues=None, limit=5, now=datetime.now(UTC)
        )
        attempts.mark_started(connection, process_id="doomed", fences=[claimed.fence])
        processes.deregister(connection, "doomed")
    assert claimed.id == first and held(jq, "conc.failing") == 1
    assert rescue_orphans(jq) == 1  # max_attempts=1: the interrupted attempt was its last
    assert statuses(jq, [first, second]) == [FAILED, BLOCKED]
    assert held(jq, "conc.failing") == 0
    assert claim(jq) == [second]


def test_limit_changes_take_effect_as_slots_free(jq: JobQueue) -> None:
    ids = [limited.enqueue(i).id for i in range(3)]
    assert claim(jq) == ids[:2]
    with jq.transaction() as connection:
        connection.execute(update(job_semaphores).values(max_running=1, held=1))
    assert claim(jq) == []  # one still runs under the new limit of one
    with jq.transaction() as connection:
        connection.execute(update(job_semaphores).values(held=0))
    assert claim(jq) == [ids[2]]


def test_due_jobs_lists_the_jobs_waiting_for_their_key_first(jq: JobQueue) -> None:
    plain = jq.enqueue_many([JobCall("conc.plain")])[0].id
    keyed = limited.enqueue(1).id
    later = limited.enqueue_in(timedelta(hours=1), 2).id
    assert [job.id for job in jq.due_jobs()] == [keyed, plain]  # as a claim takes them
    assert [job.id for job in jq.due_jobs(limit=1)] == [keyed]
    assert later not in {job.id for job in jq.due_jobs(limit=None)}
    assert claim(jq) == [keyed, plain]


def test_a_keyed_job_does_not_jump_an_older_plain_one(jq: JobQueue) -> None:
    plain = jq.enqueue_many([JobCall("conc.plain")])[0].id
    keyed = limited.enqueue(1).id
    assert claim(jq, limit=1) == [plain]
    assert claim(jq, limit=1) == [keyed]
    older_keyed = limited.enqueue(2).id
    newer_plain = jq.enqueue_many([JobCall("conc.plain")])[0].id
    with jq.transaction() as connection:  # the key has room again
        connection.execute(update(job_semaphores).values(held=0))
    assert claim(jq, limit=1) == [older_keyed]  # nor does a plain job jump an older keyed one
    assert claim(jq, limit=1) == [newer_plain]
