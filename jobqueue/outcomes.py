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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy import Connection

from jobqueue import claims, counters, semaphores
from jobqueue.claims import ClaimedJob
from jobqueue.execution import Outcome
from jobqueue.schema import CANCELLED, FAILED, PENDING

log = structlog.get_logger("jobqueue.worker")

#: How long a finished job's outcome may wait to be written with others (a latency bound).
OUTCOME_DELAY = 0.02
#: Outcome status of a job handed back at shutdown (no failed attempt counted).
RELEASED = "released"


@dataclass(frozen=True)
class Record:
    job: ClaimedJob
    outcome: Outcome


@dataclass
class WriteReport:
    succeeded: list[Record] = field(default_factory=list)
    released: list[Record] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
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
    successes = [r for r in records if r.outcome.succeeded]
    releases = [r for r in records if r.outcome.status == RELEASED]
    failures = [r for r in records if not r.outcome.succeeded and r.outcome.status != RELEASED]
    if successes:
        done = claims.complete_jobs(
            connection, process_id=process_id, fences=[r.job.fence for r in successes], now=now
        )
        for record in successes:
            (report.succeeded if record.job.id in done else report.rejected).append(record)
    if releases:
        claims.release_jobs(
            connection, process_id=process_id, fences=[r.job.fence for r in releases], now=now
        )
        report.released = releases
    for record in failures:
        outcome = record.outcome
        ok = claims.record_failure(
            connection,
            record.job,
            error=outcome.error or "",
            retry_at=outcome.retry_at,
            final_status=outcome.status if outcome.status != PENDING else FAILED,
            now=now,
        )
        (report.failed if ok else report.rejected).append(record)
    ended = report.succeeded + [r for r in report.failed if r.outcome.status != PENDING]
    keys = [r.job.concurrency_key for r in ended if r.job.concurrency_key is not None]
    if keys:
        semaphores.release_slots(connection, keys)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in report.succeeded:
        counts[record.job.queue]["succeeded"] += 1
    for record in report.failed:
        counts[record.job.queue][STAT_KIND[record.outcome.status]] += 1
    if counts:
        counters.bump_stats(connection, shard=process_id, now=now, counts=counts)
    return report


#: Outcome status -> the counter it adds to.
STAT_KIND = {PENDING: "retried", FAILED: "failed", CANCELLED: "discarded"}


def log_report(report: WriteReport) -> None:
    """One event per state change, after the transaction that made it committed."""
    for record in report.succeeded:
        log.debug("job_succeeded", **job_fields(record.job))
    for record in report.released:
        log.info("job_released", **job_fields(record.job))
    for record in report.failed:
        _log_failure(record)
    for record in report.rejected:
        log.warning(
            "job_write_rejected",
            **job_fields(record.job),
            outcome=record.outcome.status,
            reason="the job is no longer held by this attempt (rescued or finished)",
        )


def job_fields(job: ClaimedJob) -> dict[str, object]:
    return {"job_id": job.id, "job_name": job.name, "queue": job.queue, "attempt": job.attempts}


def _log_failure(record: Record) -> None:
    outcome = record.outcome
    error = outcome.exception
    summary = _summary(error) if error is not None else outcome.error
    fields = job_fields(record.job)
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
    else:
        log.error(
            "job_failed", **fields, error=summary, failed_attempts=record.job.failed_attempts + 1
        )


def _summary(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose str() raises still gets logged
        return f"{type(error).__name__}: <unprintable>"
