"""The worker's claim loop: write finished outcomes and claim the next jobs in one write
transaction, hand the claimed jobs to the dispatcher, and wait (for NOTIFY, a finished job, a
stop request, or the next due job) when there is nothing to do."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog

from jobqueue.database import Database
from jobqueue.db_errors import is_transient
from jobqueue.runtime.dispatcher import Dispatcher
from jobqueue.runtime.execution import Execution
from jobqueue.runtime.heartbeat import Heartbeat
from jobqueue.runtime.in_flight import InFlight, claim_limits
from jobqueue.runtime.lifecycle import Stopping
from jobqueue.runtime.outcomes import Record, log_report, write_records
from jobqueue.settings import MIN_POLL_INTERVAL, WorkerSettings
from jobqueue.store import attempts, claiming, due, processes
from jobqueue.store.claimed import ClaimedJob

log = structlog.get_logger("jobqueue.worker")

TICK = 0.1  # longest the loop sleeps before looking at signal flags again


class ClaimLoop:
    """Holds up to ``threads + prefetch`` jobs (see :func:`claim_limits`)."""

    def __init__(
        self,
        database: Database,
        *,
        process_id: str,
        settings: WorkerSettings,
        in_flight: InFlight,
        stop: Stopping,
        dispatcher: Dispatcher,
        heartbeat: Heartbeat,
    ) -> None:
        self.database = database
        self.process_id = process_id
        self.queues = settings.queues
        self.settings = settings
        self.in_flight = in_flight
        self.stop = stop
        self.dispatcher = dispatcher
        self.heartbeat = heartbeat

    def run(self) -> None:
        idle_wait = MIN_POLL_INTERVAL
        db_error_delay = 0.1
        next_due: datetime | None = None
        drained = True  # the last claim took all that was due: look before taking the lock
        while True:
            self.stop.check_signals()
            if self.stop.requested:
                return
            want = self._wanted()
            failed: Exception | None = None
            claimed: list[ClaimedJob] = []
            starts = self.in_flight.starts_to_record(time.monotonic())
            with self.in_flight.cycle_lock:
                records = self.in_flight.outcomes.take(force=want > 0 or bool(starts))
                if records or want or starts:
                    try:
                        claimed, next_due = self._cycle(records, want, starts, look_first=drained)
                    except Exception as error:  # the database blipped: keep outcomes, retry
                        self.in_flight.outcomes.requeue(records)
                        failed = error
                    for job in claimed:
                        self.dispatcher.dispatch(job)
            if not records and want == 0 and not starts:
                self.sleep(self.in_flight.outcomes.wait(TICK))
                continue
            if failed is not None:
                event = log.warning if is_transient(failed) else log.error
                event("claim_failed", error=str(failed).splitlines()[0], outcomes=len(records))
                self.sleep(db_error_delay)
                db_error_delay = min(db_error_delay * 2, 5.0)
                continue
            db_error_delay = 0.1
            if want:
                drained = len(claimed) < want
            if claimed:
                idle_wait = MIN_POLL_INTERVAL
            elif want and not records and not starts:
                if self.settings.burst and self._burst_done():
                    self.stop.request("burst: nothing due and nothing running")
                    return
                self._idle(idle_wait, next_due)
                idle_wait = min(idle_wait * 2, self.settings.poll_interval)

    def _wanted(self) -> int:
        """How many jobs to claim now (0 until the held ones run low)."""
        in_flight = self.in_flight.count()
        capacity, low_water = self.limits()
        want = capacity - in_flight if in_flight <= low_water else 0
        if self.settings.max_jobs is not None:  # never claim what this life won't run
            left = self.settings.max_jobs - self.in_flight.processed - in_flight
            want = min(want, max(0, left))
        return want

    def _idle(self, wait: float, next_due: datetime | None) -> None:
        if next_due is not None:
            wait = min(wait, max(0.0, (next_due - datetime.now(UTC)).total_seconds()))
        self.sleep(wait)

    def _cycle(
        self, records: list[Record], want: int, starts: list[Execution], *, look_first: bool
    ) -> tuple[list[ClaimedJob], datetime | None]:
        """One write transaction: record finished outcomes and the starts of long-running
        attempts, and claim up to ``want`` jobs."""
        now = datetime.now(UTC)
        if look_first and not records and not starts:
            # A cheap read first, so an idle poll never takes the write lock (SQLite) or row
            # locks; it also tells when the next scheduled job is due.
            with self.database.transaction(read_only=True) as connection:
                next_due = due.next_due_at(connection, self.queues)
            if next_due is None or next_due > now:
                return [], next_due
        with self.database.transaction() as connection:
            # A busy worker proves it is alive in its claim transactions too: under heavy
            # SQLite contention the heartbeat thread's own write can wait behind claims.
            beat = time.monotonic()
            beating = self.heartbeat.due(beat)
            if beating:
                processes.heartbeat(connection, self.process_id)
            report = write_records(connection, self.process_id, records, now) if records else None
            if starts:
                attempts.mark_started(
                    connection,
                    process_id=self.process_id,
                    fences=[current.job.fence for current in starts],
                )
            claimed, expired = (
                claiming.claim_due(
                    connection, process_id=self.process_id, queues=self.queues, limit=want, now=now
                )
                if want
                else ([], [])
            )
        if beating:
            self.heartbeat.last_beat = beat
        for current in starts:
            current.start_recorded = True
        try:
            if report is not None:
                log_report(report)
            for job in expired:
                log.warning("job_expired", **job.log_fields, expires_at=str(job.expires_at))
        except Exception as error:  # written already: a logging failure must not redo it
            log.error("log_failed", error=repr(error))
        return claimed, None

    def limits(self) -> tuple[int, int]:
        return claim_limits(
            self.settings.threads, self.settings.prefetch, self.in_flight.job_seconds
        )

    def _burst_done(self) -> bool:
        """Nothing running here or anywhere in our queues (a job held by a process that died
        will be rescued and is still work for this burst), and still nothing due: looked at
        after the running count, so a job rescued between the two reads is seen as due."""
        if self.in_flight.count():
            return False
        try:
            with self.database.transaction(read_only=True) as connection:
                if due.running_count(connection, self.queues):
                    return False
            with self.database.transaction(read_only=True) as connection:
                first_due = due.next_due_at(connection, self.queues)
            return first_due is None or first_due > datetime.now(UTC)
        except Exception:
            return False

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early on NOTIFY, a finished job or a stop request."""
        deadline = time.monotonic() + seconds
        while True:
            self.stop.check_signals()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stop.requested:
                return
            if self.in_flight.wake.wait(min(remaining, TICK)):
                self.in_flight.wake.clear()
                return
