"""Recording finished attempts: one fenced write for a batch of outcomes, and its log events.

The worker writes outcomes in the same transaction as its next claim, so a busy worker pays one
write transaction per batch of jobs (the main lever for small jobs on every backend, and on
SQLite the only writer in the process, so it never waits on itself). Successes of many jobs go
in one UPDATE; every write is fenced by process, attempt and status, so a stale worker can
neither overwrite the attempt that replaced it nor resurrect a finished job.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy import Connection

from jobqueue.database import Database
from jobqueue.runtime.execution import RELEASED, SLEEPING, SNOOZED, Outcome
from jobqueue.schema import CANCELLED, EXPIRED, FAILED, PENDING, SUCCEEDED
from jobqueue.store import attempts, counters, semaphores, workflow
from jobqueue.store.claimed import ClaimedJob
from jobqueue.store.dependencies import Ended

log = structlog.get_logger("jobqueue.worker")

#: How long a finished job's outcome may wait to be written with others (a latency bound).
OUTCOME_DELAY = 0.02


@dataclass(frozen=True)
class Record:
    job: ClaimedJob
    outcome: Outcome


@dataclass
class WriteReport:
    succeeded: list[Record] = field(default_factory=list)
    released: list[Record] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    snoozed: list[Record] = field(default_factory=list)
    slept: list[Record] = field(default_factory=list)
    rejected: list[Record] = field(default_factory=list)


class PendingOutcomes:
    """Finished attempts waiting to be written with the next claim.

    They go out all at once when the worker claims anyway, when ``batch`` of them have piled
    up, or when the oldest has waited ``OUTCOME_DELAY``; a failed write puts them back first in
    line.
    """

    def __init__(self, lock: threading.Lock, wake: threading.Event, *, batch: int) -> None:
        self._lock = lock
        self._wake = wake
        self._batch = batch
        self._records: list[Record] = []
        self._oldest = 0.0

    def put(self, job: ClaimedJob, outcome: Outcome) -> None:
        with self._lock:
            if not self._records:
                self._oldest = time.monotonic()
            self._records.append(Record(job, outcome))
        self._wake.set()

    def take(self, *, force: bool) -> list[Record]:
        with self._lock:
            if not self._records:
                return []
            full = len(self._records) >= self._batch
            if force or full or time.monotonic() >= self._oldest + OUTCOME_DELAY:
                taken, self._records = self._records, []
                return taken
            return []

    def wait(self, idle: float = 0.1) -> float:
        """How long until the oldest is due to be written (``idle`` when there is none)."""
        with self._lock:
            if not self._records:
                return idle
            return max(0.0, self._oldest + OUTCOME_DELAY - time.monotonic())

    def requeue(self, records: list[Record]) -> None:
        if records:
            with self._lock:
                self._records[:0] = records
                self._oldest = 0.0

    def fences(self) -> list[tuple[str, int]]:
        """The attempts waiting here; call with the shared lock held."""
        return [record.job.fence for record in self._records]


def write_records(
    connection: Connection, process_id: str, records: list[Record], now: datetime
) -> WriteReport:
    """Write every outcome in ``records`` inside the caller's transaction."""
    report = WriteReport()
    dependents: set[str] = set()
    successes = [r for r in records if r.outcome.succeeded]
    releases = [r for r in records if r.outcome.status == RELEASED]
    failures = [r for r in records if not r.outcome.succeeded and r.outcome.status != RELEASED]
    if successes:
        done = attempts.complete_jobs(
            connection, process_id=process_id, fences=[r.job.fence for r in successes], now=now
        )
        dependents = {job_id for job_id, depended_on in done.items() if depended_on}
        for record in successes:
            (report.succeeded if record.job.id in done else report.rejected).append(record)
        results = [
            (r.job.id, r.outcome.result) for r in successes if r.outcome.result and r.job.id in done
        ]
        attempts.store_results(connection, results)
    if releases:
        handed_back = attempts.release_jobs(
            connection, process_id=process_id, fences=[r.job.fence for r in releases]
        )
        for record in releases:
            (report.released if record.job.id in handed_back else report.rejected).append(record)
    _write_failures(connection, failures, report, now)
    # Every attempt written here left running (ended, or waiting again): its slot is given
    # back; a job holds a slot only while it runs, or sleeps between its steps. (Released
    # jobs gave theirs back in release_jobs.)
    left = report.succeeded + report.failed + report.snoozed
    keys = [r.job.concurrency_key for r in left if r.job.concurrency_key is not None]
    if keys:
        semaphores.release_slots(connection, keys)
    _carry_through_workflows(connection, report, dependents, now)
    counted = [(r.job.queue, SUCCEEDED) for r in report.succeeded]
    counted += [(r.job.queue, r.outcome.status) for r in report.failed]
    counters.bump_outcomes(connection, shard=process_id, now=now, outcomes=counted)
    return report


def _carry_through_workflows(
    connection: Connection, report: WriteReport, dependents: set[str], now: datetime
) -> None:
    """The ends written here, carried to their batches and dependents in this transaction
    (see :mod:`jobqueue.store.workflow`); nothing to do for a plain job nobody depends on.
    A failure's dependents are looked up (failures are rare); a success's are known from
    its completion."""
    ended = [
        Ended(r.job.id, SUCCEEDED, r.job.batch_id, r.job.callback_of, r.job.id in dependents)
        for r in report.succeeded
    ]
    ended += [
        Ended(r.job.id, r.outcome.status, r.job.batch_id, r.job.callback_of)
        for r in report.failed
        if r.outcome.status != PENDING
    ]
    relevant = [e for e in ended if e.batch_id or e.callback_of or e.has_dependents]
    if relevant:
        workflow.finish(connection, relevant, now)


def _write_failures(
    connection: Connection, failures: list[Record], report: WriteReport, now: datetime
) -> None:
    """Each attempt that did not succeed: to sleep, snoozed, or counted as failed."""
    for record in failures:
        outcome = record.outcome
        if outcome.status == SLEEPING:
            assert outcome.retry_at is not None
            slept = attempts.put_to_sleep(connection, record.job, until=outcome.retry_at)
            (report.slept if slept else report.rejected).append(record)
            continue
        if outcome.status == SNOOZED:
            assert outcome.retry_at is not None
            snoozed = attempts.snooze(
                connection, record.job, error=outcome.error or "", until=outcome.retry_at
            )
            (report.snoozed if snoozed else report.rejected).append(record)
            continue
        ok = attempts.record_failure(
            connection,
            record.job,
            error=outcome.error or "",
            retry_at=outcome.retry_at,
            final_status=outcome.status if outcome.status != PENDING else FAILED,
            now=now,
        )
        (report.failed if ok else report.rejected).append(record)


def log_report(report: WriteReport) -> None:
    """One event per state change, after the transaction that made it committed."""
    for record in report.succeeded:
        log.debug("job_succeeded", **record.job.log_fields)
    for record in report.released:
        log.info("job_released", **record.job.log_fields)
    for record in report.failed:
        _log_failure(record)
    for record in report.snoozed:
        assert record.outcome.retry_at is not None
        log.warning(
            "job_snoozed",
            **record.job.log_fields,
            reason="no job is registered under this name in this worker",
            retry_at=record.outcome.retry_at.isoformat(),
        )
    for record in report.slept:
        assert record.outcome.retry_at is not None
        log.info("job_sleeping", **record.job.log_fields, until=record.outcome.retry_at.isoformat())
    for record in report.rejected:
        log.warning(
            "job_write_rejected",
            **record.job.log_fields,
            outcome=record.outcome.status,
            reason="the job is no longer held by this attempt (rescued or finished)",
        )


def _log_failure(record: Record) -> None:
    outcome = record.outcome
    error = outcome.exception
    summary = _summary(error) if error is not None else outcome.error
    # The traceback, as exc_info: rendered by jobqueue's output, or by the host's logging.
    fields = {**record.job.log_fields, **({"exc_info": error} if error is not None else {})}
    if outcome.status == PENDING:
        assert outcome.retry_at is not None
        log.info(
            "job_retry_scheduled",
            **fields,
            error=summary,
            retry_at=outcome.retry_at.isoformat(),
            failed_attempts=record.job.failed_attempts + 1,
        )
    elif outcome.status == CANCELLED:
        log.warning("job_discarded", **fields, error=summary)
    elif outcome.status == EXPIRED:
        log.warning("job_expired", **fields, error=summary, expires_at=str(record.job.expires_at))
    else:
        log.error(
            "job_failed", **fields, error=summary, failed_attempts=record.job.failed_attempts + 1
        )


def _summary(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose str() raises still gets logged
        return f"{type(error).__name__}: <unprintable>"


def write_remaining(
    database: Database,
    process_id: str,
    pending: PendingOutcomes,
    cycle_lock: threading.Lock,
    *,
    deadline: float,
) -> None:
    """Write every outstanding outcome, retrying through a database blip until ``deadline``
    (a stopping worker's last duty); what cannot be written stays running until rescued as an
    orphan."""
    delay = 0.05
    while True:
        with cycle_lock:
            records = pending.take(force=True)
            if not records:
                return
            try:
                with database.transaction() as connection:
                    report = write_records(connection, process_id, records, datetime.now(UTC))
            except Exception as error:  # retried until the deadline
                if time.monotonic() > deadline:
                    log.error(
                        "job_outcome_not_recorded",
                        job_ids=[r.job.id for r in records],
                        error=str(error).splitlines()[0],
                    )
                    return
                pending.requeue(records)
                log.warning("job_outcome_write_retry", error=str(error).splitlines()[0])
                report = None
        if report is not None:
            log_report(report)
        else:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
