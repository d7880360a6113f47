"""Profile A bound to jobqueue's recovery: every worker's poll is the sweep.

A job's row is its only message, so nothing owed can be lost apart from the database: what the
profile calls a recovery tick is what ``jobrunner work`` runs on its own schedule, the
supervisor's rescue of dead workers' jobs (:func:`jobqueue.runtime.maintenance.rescue`) and a
worker's poll, the claim loop's cycle (a cheap look for anything due, then
:func:`jobqueue.store.claims.claim_jobs` in a write transaction) handing what it claims to the
worker's job threads. Its page is the worker's claim limit for its threads. The selection the
tick is held to is :meth:`jobqueue.JobQueue.due_jobs`, the claim's own predicate and order.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from due_work_harness import DueWorkSweep, InFlightExecution, OwedWorkVariant

from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.options import DEFAULT_PRIORITY
from jobqueue.queue import JobQueue
from jobqueue.runtime import maintenance
from jobqueue.runtime.lifecycle import register
from jobqueue.runtime.outcomes import write_remaining
from jobqueue.runtime.worker import Worker
from jobqueue.schema import FAILED
from jobqueue.settings import DEFAULT_DEAD_THRESHOLD, WorkerSettings
from jobqueue.store import attempts, processes
from jobqueue.store.claimed import ClaimedJob
from jobqueue.testing import _probe
from jobqueue.testing._owners import Owners
from jobqueue.testing._selection import DueSelection

#: The tick's worker threads: its page is what the claim loop takes for them (twice as many).
THREADS = 2
#: Longest a proof waits for a worker it started to do what it is waiting for.
WAIT = 60.0


class RecoveryTick:
    """One round of recovery on ``queue``: the supervisor's rescue, then one poll of a real
    :class:`~jobqueue.runtime.worker.Worker` (registered as this process), whose job threads run
    what it claimed. Remembers what the last poll claimed, in claim order."""

    def __init__(self, jobqueue: JobQueue, queue: str) -> None:
        self.jobqueue = jobqueue
        settings = WorkerSettings(jobqueue.database_url, queues=[queue], threads=THREADS)
        self.worker = Worker(settings)
        self.claimed: list[str] = []
        self._drained = True
        with self.worker.jobqueue.transaction() as connection:
            register(connection, process_id=self.worker.process_id, kind="worker", queues=[queue])
        self.worker.claim_loop.heartbeat.last_beat = time.monotonic()

    @property
    def page_size(self) -> int:
        return self.worker.claim_loop.limits()[0]

    def __call__(self) -> int:
        maintenance.rescue(self.jobqueue, threshold_seconds=DEFAULT_DEAD_THRESHOLD)
        loop, in_flight = self.worker.claim_loop, self.worker.in_flight
        # The claim loop's own step (ClaimLoop.run, one turn): how many to claim, then the
        # cycle that writes finished outcomes and claims, then the dispatch.
        want = loop._wanted()  # pyright: ignore[reportPrivateUsage]
        starts = in_flight.starts_to_record(time.monotonic())
        with in_flight.cycle_lock:
            records = in_flight.outcomes.take(force=True)
            claimed, _next_due = loop._cycle(  # pyright: ignore[reportPrivateUsage]
                records, want, starts, look_first=self._drained
            )
            for job in claimed:
                loop.dispatcher.dispatch(job)
        self._drained = len(claimed) < want
        self.claimed = [job.id for job in claimed]
        return len(claimed)

    def close(self) -> None:
        """The worker's shutdown: its jobs end, their outcomes are written, it deregisters."""
        _probe.release_all()
        in_flight, deadline = self.worker.in_flight, time.monotonic() + WAIT
        while in_flight.count() and time.monotonic() < deadline:
            in_flight.wake.wait(0.1)  # set by every attempt that ends
            in_flight.wake.clear()
        database, process_id = self.worker.jobqueue, self.worker.process_id
        write_remaining(
            database,
            process_id,
            in_flight.outcomes,
            in_flight.cycle_lock,
            deadline=time.monotonic() + 5,
        )
        with database.transaction() as connection:
            processes.deregister(connection, process_id)
        self.worker.claim_loop.dispatcher.close()
        database.close()


class Rows:
    """Probe jobs on the sweep's queue, in the states the proofs need, each made through
    production's own enqueue, claim, failure, release, rescue and cancel."""

    def __init__(self, jobqueue: JobQueue, queue: str, owners: Owners) -> None:
        self.jobqueue, self.queue, self.owners = jobqueue, queue, owners
        # A job a stand-in claims is enqueued ahead of every other: the claim takes that one.
        self._ahead = itertools.count(DEFAULT_PRIORITY - 1, -1)

    def owed(self, age: timedelta = timedelta(minutes=1), priority: int = DEFAULT_PRIORITY) -> str:
        return self.enqueue(age, priority).id

    def enqueue(self, age: timedelta, priority: int = DEFAULT_PRIORITY) -> EnqueuedJob:
        due = datetime.now(UTC) - age
        call = JobCall(_probe.PROBE_JOB, queue=self.queue, priority=priority, scheduled_for=due)
        return self.jobqueue.enqueue_many([call])[0]

    def claimed(self, age: timedelta) -> ClaimedJob:
        job_id = self.owed(age, next(self._ahead))
        [job] = self.owners.claim([self.queue], 1)
        assert job.id == job_id, f"a stand-in claimed {job.id}, not the job made for it"
        return job

    def failed_once(self, age: timedelta) -> str:
        job = self.claimed(age)
        self._fail(job, retry_at=datetime.now(UTC) - age)
        return job.id

    def released(self, age: timedelta) -> str:
        job = self.claimed(age)
        with self.jobqueue.transaction() as connection:
            attempts.release_jobs(connection, process_id=job.claimed_by, fences=[job.fence])
        return job.id

    def rescued(self, age: timedelta) -> str:
        job = self.claimed(age)
        self.owners.kill_owner_of(job.claimed_by)
        maintenance.rescue(self.jobqueue, threshold_seconds=DEFAULT_DEAD_THRESHOLD)
        return job.id

    def terminal(self, age: timedelta) -> list[str]:
        succeeded = self.claimed(age)
        with self.jobqueue.transaction() as connection:
            attempts.complete_jobs(
                connection,
                process_id=succeeded.claimed_by,
                fences=[succeeded.fence],
                now=datetime.now(UTC),
            )
        failed = self.claimed(age)
        self._fail(failed, retry_at=None)
        cancelled = self.owed(age)
        self.jobqueue.admin.cancel([cancelled])
        return [succeeded.id, failed.id, cancelled]

    def _fail(self, job: ClaimedJob, *, retry_at: datetime | None) -> None:
        with self.jobqueue.transaction() as connection:
            attempts.record_failure(
                connection,
                job,
                error="probe",
                retry_at=retry_at,
                final_status=FAILED,
                now=datetime.now(UTC),
            )


def published_due(jobqueue: JobQueue, queue: str) -> float:
    """The "due" figure ``jobrunner queues`` and the dashboard show for ``queue``."""
    summaries = [s for s in jobqueue.admin.queues() if s.queue == queue]
    return float(summaries[0].due) if summaries else 0.0


def held_open(tick_ids: Callable[[], list[str]]) -> Callable[..., Any]:
    """The in-flight start: the harness's tick claims the job and its body waits, begun."""

    @contextmanager
    def start(job_id: str, run_tick: Callable[[], int]) -> Iterator[None]:
        began, gate = _probe.hold(job_id)
        try:
            run_tick()
            assert job_id in tick_ids(), f"the recovery tick did not claim {job_id}"
            assert began.wait(WAIT), f"the worker claimed {job_id} and never started it"
            yield
        finally:
            gate.set()

    return start


def run_by_jobrunner_work(rows: Rows) -> Callable[[], None]:
    """Schedule evidence: a ``jobrunner work`` process finds, by its own polling, a job that
    became due after it started, written before it listened for any notification."""

    def evidence() -> None:
        handle = rows.enqueue(age=timedelta(seconds=-0.5))  # due half a second from now
        command = [sys.executable, "-m", "jobqueue", "work", "--queues", rows.queue]
        command += ["--app", _probe.__name__, "--processes", "1", "--threads", "1"]
        env = {**os.environ, "JOBQUEUE_DATABASE_URL": rows.jobqueue.database_url}
        worker = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            handle.result(timeout=WAIT)  # raises unless that worker ran it to success
        finally:
            worker.send_signal(signal.SIGTERM)
            _out, errors = worker.communicate(timeout=WAIT)
        assert worker.returncode == 0, f"jobrunner work exited {worker.returncode}: {errors}"

    return evidence


@contextmanager
def recovery(jobqueue: JobQueue, *, queue: str = "due-work-recovery") -> Iterator[DueWorkSweep]:
    """Longer than usual because it is one binding: every field below is a closure over the
    same tick and rows, and splitting them would only scatter what one reviewer reads at once."""
    owners = Owners(jobqueue)
    tick = RecoveryTick(jobqueue, queue)
    rows = Rows(jobqueue, queue, owners)
    try:
        yield DueWorkSweep(
            name=f"jobqueue workers' polls of {queue!r}",
            due_work=lambda: DueSelection(jobqueue, (queue,)),
            run_tick=tick,
            make_owed=rows.owed,
            make_terminal=rows.terminal,
            recovery_delay=timedelta(0),
            page_size=tick.page_size,
            dispatched_ids=lambda: list(tick.claimed),
            additional_owed_variants=(
                OwedWorkVariant(name="a retry after a failed attempt", make=rows.failed_once),
                OwedWorkVariant(name="released unstarted by its worker", make=rows.released),
                OwedWorkVariant(name="rescued from a dead worker", make=rows.rescued),
            ),
            identity_of=lambda row: getattr(row, "id", row),
            in_flight=InFlightExecution(
                make_owed=rows.owed,
                start=held_open(lambda: tick.claimed),
                execution_count_for=_probe.starts,
            ),
            observe_outstanding=lambda: published_due(jobqueue, queue),
            assert_scheduled=run_by_jobrunner_work(rows),
        )
    finally:
        tick.close()
        owners.close()
