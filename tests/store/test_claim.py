"""Claim, finish, release and rescue at the store level, on every backend."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import JobCall, JobQueue
from jobqueue.runtime import lifecycle
from jobqueue.runtime.maintenance import rescue, rescue_orphans
from jobqueue.schema import FAILED, PENDING, RUNNING, SUCCEEDED
from jobqueue.store import attempts, claims, due, processes
from jobqueue.store.claimed import ClaimedJob

# Also through PgBouncer in transaction mode (tests/backends.py).
pytestmark = pytest.mark.pgbouncer


def claim(jq: JobQueue, process_id: str, limit: int = 10, queues: list[str] | None = None):
    """Claim as ``process_id``, registering it first if it is not registered yet."""
    with jq.transaction() as connection:
        known = {row.id for row in processes.all_processes(connection)}
        if process_id not in known:
            lifecycle.register(connection, process_id=process_id, kind="worker")
    with jq.transaction() as connection:
        return claims.claim_jobs(
            connection, process_id=process_id, queues=queues, limit=limit, now=datetime.now(UTC)
        )


def start(jq: JobQueue, *jobs: ClaimedJob) -> None:
    """Record these attempts' starts, as their worker does once they have run a while."""
    with jq.transaction() as connection:
        fences = [job.fence for job in jobs]
        assert attempts.mark_started(connection, process_id=jobs[0].claimed_by, fences=fences) == (
            len(jobs)
        )


def register(jq: JobQueue, process_id: str) -> None:
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id=process_id, kind="worker")


def test_a_process_without_a_row_claims_nothing(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a")])
    with jq.transaction() as connection:
        jobs = claims.claim_jobs(
            connection, process_id="declared-dead", queues=None, limit=5, now=datetime.now(UTC)
        )
    assert jobs == []
    assert jq.count_jobs(status=PENDING) == 1


def test_claim_takes_due_jobs_by_priority_then_time(jq: JobQueue) -> None:
    now = datetime.now(UTC)
    jq.enqueue_many(
        [
            JobCall("a", args=(1,), priority=5),
            JobCall("a", args=(2,), priority=-1),
            JobCall("a", args=(3,), scheduled_for=now - timedelta(minutes=1)),
            JobCall("a", args=(4,), scheduled_for=now + timedelta(hours=1)),
        ]
    )
    jobs = claim(jq, "p1")
    assert [job.args_json for job in jobs] == [
        '{"args":[2]}',
        '{"args":[3]}',
        '{"args":[1]}',
    ]
    assert all(job.attempts == 1 and job.claimed_by == "p1" for job in jobs)
    row = jq.get_job(jobs[0].id)
    assert row is not None and row.status == RUNNING and row.started_at is not None


def test_claim_respects_queue_order_and_limit(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a", queue="low", priority=-100) for _ in range(3)])
    jq.enqueue_many([JobCall("a", queue="high") for _ in range(3)])
    jq.enqueue_many([JobCall("a", queue="other") for _ in range(3)])
    jobs = claim(jq, "p1", limit=4, queues=["high", "low"])
    assert [job.queue for job in jobs] == ["high", "high", "high", "low"]
    assert jq.count_jobs(status=PENDING, queue="other") == 3


def test_concurrent_claims_never_hand_a_job_to_two_workers(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a", args=(i,)) for i in range(300)])
    seen: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        try:
            while True:
                jobs = claim(jq, name, limit=7)
                if not jobs:
                    return
                with lock:
                    seen.extend(job.id for job in jobs)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(seen) == 300 and len(set(seen)) == 300


def test_completion_is_fenced_by_process_and_attempt(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a"), JobCall("a")])
    first, second = claim(jq, "p1")
    now = datetime.now(UTC)
    with jq.transaction() as connection:
        # Another process, or a stale attempt number, changes nothing.
        assert (
            attempts.complete_jobs(connection, process_id="p2", fences=[first.fence], now=now) == {}
        )
        stale = (first.id, first.attempts + 1)
        assert attempts.complete_jobs(connection, process_id="p1", fences=[stale], now=now) == {}
        done = attempts.complete_jobs(
            connection, process_id="p1", fences=[first.fence, second.fence], now=now
        )
    assert done == {first.id: False, second.id: False}
    with jq.transaction() as connection:
        # A finished job is never resurrected by a late write.
        assert (
            attempts.complete_jobs(connection, process_id="p1", fences=[first.fence], now=now) == {}
        )
        assert not attempts.record_failure(
            connection, first, error="late", retry_at=now, final_status=FAILED, now=now
        )
    row = jq.get_job(first.id)
    assert row is not None and row.status == SUCCEEDED and row.last_error is None


def test_failure_reschedules_or_fails(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a", max_attempts=2)])
    (job,) = claim(jq, "p1")
    later = datetime.now(UTC) + timedelta(seconds=30)
    with jq.transaction() as connection:
        assert attempts.record_failure(
            connection, job, error="e1", retry_at=later, final_status=FAILED, now=later
        )
    row = jq.get_job(job.id)
    assert row is not None
    assert (row.status, row.failed_attempts, row.scheduled_for) == (PENDING, 1, later)
    assert claim(jq, "p1") == []  # not due yet


def test_release_returns_jobs_without_counting_a_failure(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a")])
    (job,) = claim(jq, "p1")
    with jq.transaction() as connection:
        assert attempts.release_jobs(connection, process_id="p1", fences=[job.fence]) == {job.id}
    (again,) = claim(jq, "p2")
    assert again.id == job.id and again.attempts == 2 and again.failed_attempts == 0


def test_a_release_the_fence_refuses_is_reported_as_refused_not_released(
    jq: JobQueue,
) -> None:
    """The job was rescued and claimed again meanwhile: the stale worker's release changes
    nothing, and what it reports (and logs) must say so."""
    from structlog.testing import capture_logs

    from jobqueue.runtime.execution import RELEASED, Outcome
    from jobqueue.runtime.outcomes import Record, log_report, write_records

    jq.enqueue_many([JobCall("a"), JobCall("a")])
    stale, kept = claim(jq, "p1")
    with jq.transaction() as connection:
        processes.deregister(connection, "p1")  # declared dead...
    rescue_orphans(jq)
    register(jq, "p1")  # ...and back, too late
    claim(jq, "p2", limit=1)  # the rescued job, now p2's
    with jq.transaction() as connection:
        report = write_records(
            connection,
            "p1",
            [Record(stale, Outcome(RELEASED)), Record(kept, Outcome(RELEASED))],
            datetime.now(UTC),
        )
    assert report.released == [] and [r.job.id for r in report.rejected] == [stale.id, kept.id]
    with capture_logs() as logs:
        log_report(report)
    assert [entry["event"] for entry in logs] == ["job_write_rejected"] * 2
    assert {entry["outcome"] for entry in logs} == {RELEASED}


def test_rescue_returns_orphaned_jobs_and_fails_exhausted_ones(jq: JobQueue) -> None:
    register(jq, "alive")
    jq.enqueue_many([JobCall("a", args=(1,)), JobCall("a", args=(2,), max_attempts=1)])
    retried, exhausted = claim(jq, "ghost")
    start(jq, retried, exhausted)
    with jq.transaction() as connection:
        processes.deregister(connection, "ghost")  # as if it died and was reaped
    jq.enqueue_many([JobCall("a", args=(3,))])
    (held,) = claim(jq, "alive")
    assert rescue_orphans(jq) == 2
    assert {jq.get_job(retried.id).status, jq.get_job(exhausted.id).status} == {PENDING, FAILED}  # type: ignore[union-attr]
    row = jq.get_job(retried.id)
    assert row is not None and row.failed_attempts == 1 and "WorkerLost" in (row.last_error or "")
    assert jq.get_job(held.id).status == RUNNING  # type: ignore[union-attr]


def test_a_claimed_job_that_never_started_is_rescued_without_counting_an_attempt(
    jq: JobQueue,
) -> None:
    """A worker that dies right after its claim (its prefetched jobs, a job no thread had
    picked up yet) must not use up attempts of jobs that never ran: with max_attempts=1 the
    job goes back to pending, not to failed, and its next attempt must record its start first."""
    (job,) = jq.enqueue_many([JobCall("a", max_attempts=1)])
    (claimed,) = claim(jq, "ghost")
    assert not claimed.started and not claimed.must_record_start
    with jq.transaction() as connection:
        processes.deregister(connection, "ghost")
    assert rescue_orphans(jq) == 1
    row = jq.get_job(job.id)
    assert row is not None
    assert (row.status, row.failed_attempts, row.attempts) == (PENDING, 0, 1)
    assert row.error is not None and row.error.type == "jobqueue.WorkerLost"
    assert "not counted" in row.error.message
    (again,) = claim(jq, "p2")
    assert again.attempts == 2 and again.must_record_start and not again.started
    start(jq, again)
    with jq.transaction() as connection:
        processes.deregister(connection, "p2")
    assert rescue_orphans(jq) == 1
    row = jq.get_job(job.id)
    assert row is not None and (row.status, row.failed_attempts) == (FAILED, 1)


def test_a_start_recorded_after_the_rescuers_read_is_counted_on_the_next_pass(
    jq: JobQueue,
) -> None:
    """The rescuer read the attempt as unstarted, then the (declared dead, still running)
    worker's start mark landed: the uncounted hand-back must not go through, and the next
    pass counts the attempt."""
    (job,) = jq.enqueue_many([JobCall("a")])
    (claimed,) = claim(jq, "p1")
    with jq.transaction() as connection:
        processes.deregister(connection, "p1")
    with jq.transaction(read_only=True) as connection:
        (orphan,) = attempts.orphaned_jobs(connection)
    start(jq, claimed)
    with jq.transaction() as connection:
        assert (
            attempts.rescue_job(connection, orphan, error="WorkerLost", now=datetime.now(UTC))
            is None
        )
    assert rescue_orphans(jq) == 1
    row = jq.get_job(job.id)
    assert row is not None and (row.status, row.failed_attempts) == (PENDING, 1)


def test_a_start_mark_is_fenced(jq: JobQueue) -> None:
    """Only the attempt's own process, while the attempt is running, can mark it started."""
    (job,) = jq.enqueue_many([JobCall("a")])
    (claimed,) = claim(jq, "p1")
    with jq.transaction() as connection:
        assert attempts.mark_started(connection, process_id="p2", fences=[claimed.fence]) == 0
        assert attempts.mark_started(connection, process_id="p1", fences=[(job.id, 2)]) == 0
        attempts.complete_jobs(
            connection, process_id="p1", fences=[claimed.fence], now=datetime.now(UTC)
        )
        assert attempts.mark_started(connection, process_id="p1", fences=[claimed.fence]) == 0
    row = jq.get_job(job.id)
    assert row is not None and row.started_attempt is None


def test_a_finish_that_beats_the_rescuer_makes_the_rescue_a_no_op(jq: JobQueue) -> None:
    """The reverse of a late finish: the worker was declared dead, the rescuer has read its
    orphans, but the worker's completion lands first. The rescue must then change nothing."""
    jq.enqueue_many([JobCall("a")])
    (job,) = claim(jq, "p1")
    with jq.transaction() as connection:
        processes.deregister(connection, "p1")  # declared dead
    with jq.transaction(read_only=True) as connection:
        (orphan,) = attempts.orphaned_jobs(connection)  # the rescuer's snapshot
    now = datetime.now(UTC)
    with jq.transaction() as connection:
        assert attempts.complete_jobs(connection, process_id="p1", fences=[job.fence], now=now) == {
            job.id: False
        }
    with jq.transaction() as connection:
        assert attempts.rescue_job(connection, orphan, error="WorkerLost", now=now) is None
    assert rescue_orphans(jq) == 0
    row = jq.get_job(job.id)
    assert row is not None
    assert (row.status, row.attempts, row.failed_attempts, row.last_error) == (
        SUCCEEDED,
        1,
        0,
        None,
    )


def test_after_an_outage_only_vanished_pids_count_as_dead(jq: JobQueue) -> None:
    """After an outage every heartbeat is old. ``renew`` tells a supervisor how long it was
    out of contact; while it distrusts ages (threshold None) only vanished pids count, so a
    live process that was held up too is kept. By the database clock alone it is dead."""
    register(jq, "supervisor")
    jq.enqueue_many([JobCall("a")])
    (job,) = claim(jq, "worker")
    with jq.transaction() as connection:
        connection.execute(
            processes.job_processes.update().values(
                last_heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)
            )
        )
        previous, now = processes.renew(connection, "supervisor")
        gone, _ = processes.renew(connection, "nobody")
    assert gone is None
    assert previous is not None and now - previous > timedelta(minutes=4)
    assert rescue(jq, threshold_seconds=None) == 0  # pids only: ours are alive
    assert jq.get_job(job.id).status == RUNNING  # type: ignore[union-attr]
    assert rescue(jq, threshold_seconds=60) == 1  # by the database clock it is dead
    assert jq.get_job(job.id).status == PENDING  # type: ignore[union-attr]


def test_dead_processes_are_detected_by_the_database_clock(jq: JobQueue) -> None:
    register(jq, "silent")
    jq.enqueue_many([JobCall("a")])
    (job,) = claim(jq, "silent")
    assert rescue(jq, threshold_seconds=3600) == 0  # heartbeat is fresh and the pid is ours
    with jq.transaction() as connection:
        connection.execute(
            processes.job_processes.update().values(
                last_heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)
            )
        )
    assert rescue(jq, threshold_seconds=60) == 1
    with jq.transaction() as connection:
        assert not processes.heartbeat(connection, "silent")  # it learns it was declared dead
    assert jq.get_job(job.id).status == PENDING  # type: ignore[union-attr]


def test_a_vanished_pid_on_this_host_is_dead_at_once(jq: JobQueue) -> None:
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    register(jq, "exited")
    with jq.transaction() as connection:
        connection.execute(processes.job_processes.update().values(pid=int(gone.stdout)))
    jq.enqueue_many([JobCall("a")])
    claim(jq, "exited")
    assert rescue(jq, threshold_seconds=3600) == 1


def test_next_due_at_sees_the_earliest_pending_job(jq: JobQueue) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=5)
    jq.enqueue_many(
        [
            JobCall("a", queue="q1", scheduled_for=soon + timedelta(seconds=5)),
            JobCall("a", queue="q2", scheduled_for=soon),
        ]
    )
    with jq.transaction(read_only=True) as connection:
        assert due.next_due_at(connection, None) == soon
        assert due.next_due_at(connection, ["q1"]) == soon + timedelta(seconds=5)
        assert due.next_due_at(connection, ["nothing"]) is None


def test_a_registration_whose_commit_answer_is_lost_goes_on_as_registered(jq: JobQueue) -> None:
    """The INSERT of the process row commits, but the answer to the COMMIT never arrives: the
    retry must not die on its own row (a unique violation on its process id)."""
    import time

    import pytest
    from sqlalchemy import event

    from jobqueue.database import Database
    from jobqueue.runtime.lifecycle import register_when_reachable
    from jobqueue.testing._proxy import CuttableProxy

    if jq.dialect == "sqlite":
        pytest.skip("SQLite is a local file: no answer can be lost on the way")
    with CuttableProxy(jq.database_url) as proxy:
        database = Database(proxy.url)
        database.verify_schema()  # checked once per engine: before the answer is lost
        armed = [True]

        def lose_the_commit_answer(_connection: object) -> None:
            if armed and armed.pop():
                proxy.lose_next_answer()

        event.listen(database.engine, "commit", lose_the_commit_answer)
        registered = register_when_reachable(
            database,
            process_id="01LOSTREPLYREGISTRATION000",
            kind="worker",
            sleep=time.sleep,
            stopping=lambda: False,
        )
        database.close()
    assert registered and not armed
    with jq.transaction(read_only=True) as connection:
        assert processes.is_registered(connection, "01LOSTREPLYREGISTRATION000")
