"""jobqueue's core handoffs under the harness: a worker killed after each of its commits, the
reply to each commit lost (PostgreSQL, MariaDB), and a death right after the job's external
call; every history must end where normal operation does, after ``jobrunner work --burst``."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from due_work_harness import ExternalCall, HandoffHistory, due_work_contract_suite
from handoff_jobs import (
    Mailbox,
    flaky,
    mailbox,
    once,
    one_at_a_time,
    unique,
    welcome,
    welcome_keyed,
)
from sqlalchemy import func, select

from jobqueue import EnqueuedJob, get_default_queue
from jobqueue.recurring import RecurringTask
from jobqueue.runtime.scheduler import Scheduler
from jobqueue.testing import due_work

_users = itertools.count(1)
SEND = ExternalCall(Mailbox, "send")


def _sent(user_id: int) -> int:
    with get_default_queue().transaction(read_only=True) as connection:
        query = select(func.count()).select_from(mailbox).where(mailbox.c.user_id == user_id)
        return int(connection.execute(query).scalar_one())


def _statuses(jobs: list[EnqueuedJob]) -> list[str]:
    found = [get_default_queue().get_job(handle.id) for handle in jobs]
    return sorted(row.status if row is not None else "gone" for row in found)


def _seen(handle: tuple[int, list[EnqueuedJob]]) -> tuple[list[str], int]:
    """OBSERVE: the jobs' statuses and how many mails the provider sent for the user."""
    user_id, jobs = handle
    return _statuses(jobs), _sent(user_id)


def _one(job: Any) -> Any:
    def enqueue() -> tuple[int, list[EnqueuedJob]]:
        user_id = next(_users)
        return user_id, [job.enqueue(user_id)]

    return enqueue


def _two_same_key() -> tuple[int, list[EnqueuedJob]]:
    user_id = next(_users)
    return user_id, [one_at_a_time.enqueue(user_id), one_at_a_time.enqueue(user_id)]


def _unique_twice() -> tuple[int, list[EnqueuedJob]]:
    user_id = next(_users)
    first, second = unique.enqueue(user_id), unique.enqueue(user_id)
    return user_id, [first] if first.id == second.id else [first, second]


def _held_by_dead_worker() -> tuple[int, list[EnqueuedJob]]:
    user_id = next(_users)
    handle = welcome_keyed.enqueue(user_id)
    assert due_work.held_by_dead_worker() == [handle.id]
    return user_id, [handle]


def _recurring() -> tuple[int, list[EnqueuedJob], Scheduler, datetime]:
    """ARRANGE: a recurring task seen once by its scheduler (a baseline, nothing enqueued)."""
    user_id = next(_users)
    task = RecurringTask(
        key=f"mail-{user_id}", cron="* * * * *", job_name=welcome_keyed.name, args=(user_id,)
    )
    scheduler = Scheduler(get_default_queue(), [task])
    start = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    scheduler.tick(start)
    return user_id, [], scheduler, start + timedelta(minutes=1)


def _occurrence(handle: tuple[int, list[EnqueuedJob], Scheduler, datetime]) -> None:
    """The scheduler's next tick enqueues the occurrence; a worker runs it."""
    _user_id, _jobs, scheduler, at = handle
    scheduler.tick(at)
    due_work.worker_pass()(handle)


def _mails(handle: tuple[int, Any, Any, Any]) -> int:
    """OBSERVE: mails the provider sent for the occurrence's user."""
    return _sent(handle[0])


AT_LEAST_ONCE = "a worker runs a job that calls the provider without a key"
HANDOFFS: tuple[HandoffHistory[Any, Any], ...] = (
    due_work.job_history(
        "enqueue then run, the call keyed",
        enqueue=_one(welcome_keyed),
        observe=_seen,
        external_calls=(SEND,),
    ),
    due_work.job_history(
        AT_LEAST_ONCE, enqueue=_one(welcome), observe=_seen, external_calls=(SEND,)
    ),
    due_work.job_history(
        "a job with one attempt runs once", enqueue=_one(once), observe=_seen, batch=1
    ),
    due_work.job_history("a retry after a failed attempt", enqueue=_one(flaky), observe=_seen),
    due_work.job_history("a unique job enqueued twice", enqueue=_unique_twice, observe=_seen),
    due_work.job_history(
        "a concurrency slot is released for the next job", enqueue=_two_same_key, observe=_seen
    ),
    HandoffHistory(
        name="the supervisor rescues a dead worker's job",
        arrange=_held_by_dead_worker,
        transition=due_work.rescue_pass,
        observe=_seen,
    ),
    HandoffHistory(
        name="a recurring occurrence is enqueued and run",
        arrange=_recurring,
        transition=_occurrence,
        observe=_mails,
    ),
)

CORE = due_work.contract(
    "jobqueue core handoffs",
    handoffs=HANDOFFS,
    handoff_gaps={
        AT_LEAST_ONCE: (
            "at least once: a worker that dies after the provider's call and before its "
            "outcome is written runs the job again, and a call without an idempotency key is "
            "made twice; current_job().idempotency_key makes it once (the keyed history)"
        ),
    },
)


@due_work_contract_suite(CORE)
class TestCoreHandoffs:
    pass
