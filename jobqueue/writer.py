"""The outcome writer: one thread per worker that records finished attempts in batches.

Successes of many jobs go in one fenced UPDATE per transaction, which is most of what makes
small jobs fast. A write that fails on a transient database error (lost connection, deadlock,
SQLite lock past the busy timeout) is retried with backoff until it lands, so a job never stays
``running`` behind a live worker because one UPDATE failed.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from jobqueue import store
from jobqueue.errors import DatabaseUnavailableError
from jobqueue.execution import Outcome
from jobqueue.queue import JobQueue
from jobqueue.schema import CANCELLED, FAILED, PENDING
from jobqueue.store import ClaimedJob

log = structlog.get_logger("jobqueue.worker")

RELEASED = "released"
MAX_BATCH = 500
_TRANSIENT = (OperationalError, InterfaceError, DatabaseUnavailableError)


@dataclass(frozen=True)
class Record:
    job: ClaimedJob
    outcome: Outcome


def is_transient(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _TRANSIENT)


class OutcomeWriter:
    """Collects outcomes from job threads and writes them, fenced, in batches."""

    def __init__(self, jobqueue: JobQueue, process_id: str) -> None:
        self._jobqueue = jobqueue
        self._process_id = process_id
        self._queue: queue.Queue[Record] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._give_up_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="jobqueue-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, job: ClaimedJob, outcome: Outcome) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(Record(job, outcome))

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def flush(self, timeout: float) -> bool:
        """Wait until everything put so far is written (or abandoned after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._give_up_at = deadline
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.1))
        return True

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write_with_retry(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def _write_with_retry(self, batch: list[Record]) -> None:
        delay = 0.05
        failures = 0
        while True:
            try:
                self._write(batch)
                return
            except Exception as error:
                failures += 1
                give_up = self._give_up_at is not None and time.monotonic() > self._give_up_at
                if give_up or (not is_transient(error) and failures >= 5):
                    log.error(
                        "job_outcome_not_recorded",
                        job_ids=[r.job.id for r in batch],
                        error=repr(error),
                        note="the jobs stay running until rescued as orphans",
                    )
                    return
                log.warning(
                    "job_outcome_write_retry",
                    error=str(error).splitlines()[0],
                    jobs=len(batch),
                    retry_in=round(delay, 3),
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def write_now(self, batch: list[Record]) -> None:
        """Write ``batch`` in the calling thread (used by :func:`jobqueue.testing.drain`)."""
        self._write(batch)

    def _write(self, batch: list[Record]) -> None:
        now = datetime.now(UTC)
        successes = [r for r in batch if r.outcome.succeeded]
        releases = [r for r in batch if r.outcome.status == RELEASED]
        failures = [r for r in batch if not r.outcome.succeeded and r.outcome.status != RELEASED]
        rejected: list[Record] = []
        with self._jobqueue.transaction() as connection:
            done = store.complete_jobs(
                connection,
                process_id=self._process_id,
                fences=[r.job.fence for r in successes],
                now=now,
            )
            rejected += [r for r in successes if r.job.id not in done]
            store.release_jobs(
                connection,
                process_id=self._process_id,
                fences=[r.job.fence for r in releases],
                now=now,
            )
            written: list[Record] = []
            for record in failures:
                outcome = record.outcome
                ok = store.record_failure(
                    connection,
                    record.job,
                    error=outcome.error or "",
                    retry_at=outcome.retry_at,
                    final_status=outcome.status if outcome.status != PENDING else FAILED,
                    now=now,
                )
                (written if ok else rejected).append(record)
        for record in successes:
            if record.job.id in done:
                log.debug("job_succeeded", **_fields(record.job))
        for record in releases:
            log.info("job_released", **_fields(record.job))
        for record in written:
            _log_failure(record)
        for record in rejected:
            log.warning(
                "job_write_rejected",
                **_fields(record.job),
                outcome=record.outcome.status,
                reason="the job is no longer held by this attempt (rescued or finished)",
            )


def _fields(job: ClaimedJob) -> dict[str, object]:
    return {"job_id": job.id, "job_name": job.name, "queue": job.queue, "attempt": job.attempts}


def _log_failure(record: Record) -> None:
    outcome = record.outcome
    error = outcome.exception
    summary = f"{type(error).__name__}: {error}" if error is not None else outcome.error
    if outcome.status == PENDING:
        assert outcome.retry_at is not None
        log.info(
            "job_retry_scheduled",
            **_fields(record.job),
            error=summary,
            retry_at=outcome.retry_at.isoformat(),
            failed_attempts=record.job.failed_attempts + 1,
        )
    elif outcome.status == CANCELLED:
        log.warning("job_discarded", **_fields(record.job), error=summary)
    else:
        log.error(
            "job_failed",
            **_fields(record.job),
            error=summary,
            failed_attempts=record.job.failed_attempts + 1,
        )
