"""The maintenance duties every supervisor runs: heartbeat, declare dead processes, rescue the
jobs they held, prune finished jobs and old recurring runs.

Safe to run from many supervisors at once: each state change is a fenced UPDATE, so a job is
rescued once, and a rescued job whose worker comes back cannot be overwritten by it. This is
the one home of the rescue decision: which processes are dead (:func:`declare_dead`), and what
becomes of their jobs (:func:`rescue_orphans`, with the give-up rule of
:attr:`~jobqueue.store.claims.ClaimedJob.is_last_attempt`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection

from jobqueue.admin import Admin
from jobqueue.database import Database
from jobqueue.error_record import ErrorRecord
from jobqueue.runtime.host import hostname, pid_alive
from jobqueue.runtime.lifecycle import register
from jobqueue.runtime.scheduler import Scheduler
from jobqueue.schema import FAILED, SUCCEEDED
from jobqueue.store import attempts, counters, processes, semaphores, workflow
from jobqueue.store.claimed import ClaimedJob
from jobqueue.store.dependencies import Ended
from jobqueue.store.processes import ProcessRow

log = structlog.get_logger("jobqueue.maintenance")


def rescue(database: Database, *, threshold_seconds: float | None) -> int:
    """Delete dead processes' rows, then return their jobs to pending (counting the attempt).

    ``threshold_seconds=None`` finds dead processes by pid only. Returns the number of jobs
    rescued.
    """
    with database.transaction() as connection:
        declare_dead(connection, threshold_seconds=threshold_seconds)
    return rescue_orphans(database)


def declare_dead(connection: Connection, *, threshold_seconds: float | None) -> list[ProcessRow]:
    """Delete the rows of dead processes and log each.

    Dead: heartbeat older than the threshold (database clock), or on this host with its pid
    gone. ``threshold_seconds=None`` checks pids only, for when heartbeat ages cannot be trusted
    (see :class:`MaintenancePass`). The delete repeats the staleness condition, so a process
    that heartbeats in the meantime survives.
    """
    here = hostname()
    dead: list[ProcessRow] = []
    for row in processes.dead_candidates(
        connection, hostname=here, threshold_seconds=threshold_seconds
    ):
        gone = row.hostname == here and not pid_alive(row.pid)
        if not gone and threshold_seconds is None:
            continue
        stale_after = None if gone else threshold_seconds
        if processes.delete_dead(connection, row.id, stale_after=stale_after):
            dead.append(row)
    for row in dead:
        log.warning(
            "process_declared_dead",
            process_id=row.id,
            kind=row.kind,
            hostname=row.hostname,
            pid=row.pid,
            last_heartbeat_at=row.last_heartbeat_at.isoformat(),
        )
    return dead


def worker_lost_error(job: ClaimedJob) -> str:
    """The error record of an attempt whose process died or was declared dead."""
    message = (
        f"the process {job.claimed_by} running attempt {job.attempts} died or was declared "
        "dead (no heartbeat), so the attempt was interrupted"
    )
    if not job.started:
        message += " before its start was recorded; it is not counted as a failed attempt"
    return ErrorRecord("jobqueue.WorkerLost", message).to_json()


def rescue_orphans(database: Database) -> int:
    """Rescue every running job whose process row no longer exists."""
    with database.transaction(read_only=True) as connection:
        orphans = attempts.orphaned_jobs(connection)
    rescued = 0
    for job in orphans:
        now = datetime.now(UTC)
        with database.transaction() as connection:
            status = attempts.rescue_job(connection, job, error=worker_lost_error(job), now=now)
            if status is not None and job.concurrency_key is not None:
                # Out of running either way: a slot is held only while a job runs.
                semaphores.release_slots(connection, [job.concurrency_key])
            if status == FAILED:
                ended = Ended(job.id, FAILED, job.batch_id, job.callback_of)
                workflow.finish(connection, [ended], now)
            if status is not None and job.started:  # an unstarted attempt is no outcome
                counters.bump_outcomes(
                    connection, shard=job.claimed_by, now=now, outcomes=[(job.queue, status)]
                )
        if status is None:
            continue
        rescued += 1
        log.warning(
            "job_rescued",
            **job.log_fields,
            process_id=job.claimed_by,
            status=status,
            final=status == FAILED,
            counted=job.started,
        )
    return rescued


class MaintenancePass:
    """One supervisor's duties, run every heartbeat interval by :meth:`run`.

    The heartbeat and the dead-process check share one transaction, so the check knows how
    long this supervisor itself was out of contact: a failed heartbeat, or a wait for a lock
    that held everyone up. If its own previous heartbeat is more than two intervals old, the
    rows of live processes went stale along with it; for one dead threshold from now, only
    vanished pids count as dead, which gives every live process time to heartbeat again.
    Without this, the first pass after an outage would declare every worker dead and run their
    jobs twice.
    """

    def __init__(
        self,
        database: Database,
        *,
        process_id: str,
        heartbeat_interval: float,
        dead_threshold: float,
        retention: timedelta,
        scheduler: Scheduler | None,
    ) -> None:
        self.database = database
        self.process_id = process_id
        self.interval = heartbeat_interval
        self.threshold = dead_threshold
        self.retention = retention
        self.scheduler = scheduler
        # Until then (database clock), heartbeat ages are not trusted.
        self._ages_trusted_from = datetime.min.replace(tzinfo=UTC)
        self._contact_failures = 0
        self._next_runs_prune = 0.0  # monotonic time of the next pruning of recurring runs

    def run(self) -> None:
        """Heartbeat, declare dead processes, rescue their jobs, prune old ones; a failure is
        logged and the next pass retries."""
        try:
            gap = self._heartbeat_and_declare_dead()
        except Exception as error:
            self._contact_failures += 1
            log.warning(
                "heartbeat_failed", process_id=self.process_id, error=str(error).splitlines()[0]
            )
            return
        if gap is None or gap > 2 * self.interval:
            log.info(
                "database_contact_restored",
                process_id=self.process_id,
                out_of_contact_seconds=round(gap, 3) if gap is not None else None,
                failed_heartbeats=self._contact_failures,
                heartbeat_ages_trusted_in=self.threshold,
            )
        self._contact_failures = 0
        try:
            rescue_orphans(self.database)
            # A few small batches per pass: pruning never holds up claiming for long.
            admin = Admin(self.database)
            admin.prune(status=SUCCEEDED, older_than=self.retention, max_batches=10)
            admin.batches.prune(older_than=self.retention, max_rounds=10)
            if self.scheduler is not None and time.monotonic() >= self._next_runs_prune:
                self._next_runs_prune = time.monotonic() + 60
                self.scheduler.prune_runs()
        except Exception as error:
            log.warning("maintenance_failed", error=str(error).splitlines()[0])

    def _heartbeat_and_declare_dead(self) -> float | None:
        """Returns how long since this supervisor's previous heartbeat (None: it had none)."""
        with self.database.transaction() as connection:
            previous, now = processes.renew(connection, self.process_id)
            if previous is None:
                # A supervisor holds no jobs: if it was reaped, it simply registers again.
                register(connection, process_id=self.process_id, kind="supervisor")
            gap = (now - previous).total_seconds() if previous is not None else None
            if gap is None or gap > 2 * self.interval:
                self._ages_trusted_from = now + timedelta(seconds=self.threshold)
            trusted = now >= self._ages_trusted_from
            declare_dead(connection, threshold_seconds=self.threshold if trusted else None)
        return gap
