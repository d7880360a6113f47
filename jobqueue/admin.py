"""Operating the queue: inspect, retry, cancel, discard, pause, prune, and read the counters.

The same methods back the ``jobrunner`` commands, the dashboard and the Python API
(``JobQueue.admin``); each validates its input, runs the statements of
:mod:`jobqueue.store.operator` in one transaction, and logs what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Unpack

import structlog
from sqlalchemy import Connection

from jobqueue.batch_admin import BatchAdmin
from jobqueue.database import Database
from jobqueue.errors import JobNotFoundError, StepNotFoundError
from jobqueue.options import well_formed_id
from jobqueue.queue_admin import QueueAdmin
from jobqueue.reports import CancelResult, MinuteStats, QueueSummary, Stats
from jobqueue.schema import STATUSES, TERMINAL_STATUSES
from jobqueue.store import cancelling, counters, listing, operator, steps
from jobqueue.store.jobs import JobRecord, fetch_job
from jobqueue.store.processes import ProcessRow, all_processes

__all__ = ["Admin", "CancelResult", "MinuteStats", "NotFoundError", "QueueSummary", "Stats"]
__all__ += ["StepNotFoundError"]

log = structlog.get_logger("jobqueue.admin")

PRUNE_BATCH = 1000


#: An id names no job (the same error ``handle.result()`` raises).
NotFoundError = JobNotFoundError


def _check_listing(
    status: str | None,
    limit: int,
    queue: str | None = None,
    name: str | None = None,
    before: str | None = None,
) -> None:
    """Refuse filters no job can match with a ValueError (a 400 in the dashboard) before they
    reach the database, where a NUL byte is a PostgreSQL error, not an empty answer."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    for label, value, longest in (
        ("queue", queue, 100),
        ("name", name, 255),
        ("before", before, 26),
    ):
        if value is not None and ("\x00" in value or len(value) > longest):
            raise ValueError(f"{label} must be at most {longest} characters, without NUL bytes")


class Admin(QueueAdmin):
    """Operator actions on one database (a :class:`~jobqueue.JobQueue`); those on queues are
    :class:`~jobqueue.queue_admin.QueueAdmin`'s."""

    def __init__(self, jobqueue: Database) -> None:
        self.jobqueue = jobqueue

    @property
    def batches(self) -> BatchAdmin:
        """Operator actions on batches: list, get, cancel, prune."""
        return BatchAdmin(self.jobqueue)

    # -- jobs ---------------------------------------------------------------------------------

    def list_jobs(
        self,
        *,
        status: str | None = None,
        queue: str | None = None,
        name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[JobRecord]:
        """Newest first; page with ``before=<last id seen>`` (keyset on the ULID, not OFFSET)."""
        _check_listing(status, limit, queue, name, before)
        with self.jobqueue.transaction(read_only=True) as connection:
            return listing.list_jobs(
                connection, status=status, queue=queue, name=name, limit=limit, before=before
            )

    def list_summaries(self, **filters: Unpack[listing.Listing]) -> list[listing.JobSummary]:
        """What :meth:`list_jobs` finds (the same keywords), without the arguments, error and
        result, which may weigh megabytes each: a list page shows none of them."""
        _check_listing(
            filters.get("status"),
            filters.get("limit", 50),
            filters.get("queue"),
            filters.get("name"),
            filters.get("before"),
        )
        with self.jobqueue.transaction(read_only=True) as connection:
            return listing.list_summaries(connection, **filters)

    def get_job(self, job_id: str) -> JobRecord:
        if not well_formed_id(job_id):
            raise NotFoundError(f"no job with id {job_id!r}")
        with self.jobqueue.transaction(read_only=True) as connection:
            job = fetch_job(connection, job_id)
        if job is None:
            raise NotFoundError(f"no job with id {job_id!r}")
        return job

    def job_steps(self, job_id: str) -> list[steps.StepSummary]:
        """The durable steps a job recorded, in order, with the size of each value."""
        with self.jobqueue.transaction(read_only=True) as connection:
            _require(connection, [job_id])
            return steps.step_summaries(connection, job_id)

    def retry(self, job_ids: Sequence[str], *, from_step: str | None = None) -> list[str]:
        """Failed or cancelled jobs go back to pending, due now, with failed_attempts reset
        (``attempts`` keeps counting). Returns the ids that moved. ``from_step``: each forgets
        that step and every later one, to run them again (none recorded: StepNotFoundError)."""
        ids = _distinct(job_ids)
        with self.jobqueue.transaction() as connection:
            _require(connection, ids, from_step)
            moved = set(operator.retry(connection, ids, _now(), from_step=from_step))
        return _logged("job_retried_by_operator", [job_id for job_id in ids if job_id in moved])

    def retry_all_failed(self, *, queue: str | None = None) -> list[str]:
        with self.jobqueue.transaction() as connection:
            ids = operator.failed_ids(connection, queue=queue)
            return _logged("job_retried_by_operator", operator.retry(connection, ids, _now()))

    def cancel(self, job_ids: Sequence[str]) -> CancelResult:
        """Waiting, pending or blocked jobs become cancelled and never run (nor, in turn, the
        jobs that depend on them and said "cancel"); running jobs are asked to
        stop (the job sees it through :func:`jobqueue.cancel_requested`)."""
        ids = _distinct(job_ids)
        now = _now()
        with self.jobqueue.transaction() as connection:
            _require(connection, ids)
            waiting = cancelling.cancel_waiting(connection, ids, now)
            running = operator.request_cancel(connection, ids, now)
        cancelled = _logged("job_cancelled", [job_id for job_id in ids if job_id in waiting])
        requested = _logged("job_cancel_requested", [job_id for job_id in ids if job_id in running])
        unchanged = [job_id for job_id in ids if job_id not in waiting and job_id not in running]
        return CancelResult(cancelled, requested, unchanged)

    def discard(self, job_ids: Sequence[str]) -> list[str]:
        """Delete failed or cancelled jobs for good. Returns the ids deleted."""
        ids = _distinct(job_ids)
        with self.jobqueue.transaction() as connection:
            _require(connection, ids)
            deleted = operator.discard(connection, ids)
        return _logged("job_discarded_by_operator", [i for i in ids if i in deleted])

    def prune(self, *, status: str, older_than: timedelta, max_batches: int | None = None) -> int:
        """Delete finished jobs of ``status`` that finished more than ``older_than`` ago, in
        small batches (each its own transaction) so claiming is never blocked for long."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(
                f"only finished jobs ({', '.join(TERMINAL_STATUSES)}) can be pruned, not {status!r}"
            )
        cutoff = _now() - older_than
        total = batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            with self.jobqueue.transaction() as connection:
                deleted = operator.prune_batch(
                    connection, status=status, cutoff=cutoff, limit=PRUNE_BATCH
                )
            total += deleted
            if deleted < PRUNE_BATCH:
                break
        if total:
            log.info("jobs_pruned", status=status, count=total)
        return total

    # -- processes and counters ---------------------------------------------------------------

    def processes(self) -> list[ProcessRow]:
        with self.jobqueue.transaction(read_only=True) as connection:
            return all_processes(connection)

    def stats(self, *, minutes: int = 60, queues: Iterable[str] | None = None) -> Stats:
        """Outcomes over the last ``minutes`` whole minutes (plus the current one)."""
        since = _this_minute() - timedelta(minutes=_check_minutes(minutes))
        with self.jobqueue.transaction(read_only=True) as connection:
            sums = counters.sums(connection, since=since, queues=queues)
        return Stats(minutes, *sums)

    def throughput(self, *, minutes: int = 60) -> list[MinuteStats]:
        """One entry per minute for the last ``minutes`` minutes (the current one last), with
        zeros where nothing finished, so a chart has no gaps."""
        current = _this_minute()
        since = current - timedelta(minutes=_check_minutes(minutes))
        with self.jobqueue.transaction(read_only=True) as connection:
            counts = counters.per_minute(connection, since=since)
        empty = (0,) * len(counters.STAT_KINDS)
        minutes_shown = [current - timedelta(minutes=back) for back in range(minutes - 1, -1, -1)]
        return [MinuteStats(minute, *counts.get(minute, empty)) for minute in minutes_shown]

    def totals(self) -> dict[str, Stats]:
        """All outcomes ever counted, per queue; they survive pruning and never go down."""
        with self.jobqueue.transaction(read_only=True) as connection:
            by_queue = counters.totals_by_queue(connection)
        return {queue: Stats(0, *values) for queue, values in sorted(by_queue.items())}

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Jobs per (queue, status), succeeded excepted: succeeded rows are the bulk of the
        table and are pruned, so counting them costs a scan and means little; the totals of
        :meth:`totals` tell how many succeeded."""
        with self.jobqueue.transaction(read_only=True) as connection:
            return operator.job_counts(connection)


def _now() -> datetime:
    return datetime.now(UTC)


def _this_minute() -> datetime:
    return _now().replace(second=0, microsecond=0)


def _check_minutes(minutes: int) -> int:
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    return minutes


def _distinct(job_ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(job_ids))


def _require(connection: Connection, ids: list[str], step: str | None = None) -> None:
    missing = [job_id for job_id in ids if not well_formed_id(job_id)]
    missing += operator.missing_ids(connection, [i for i in ids if well_formed_id(i)])
    if missing:
        raise NotFoundError(f"no job with id {', '.join(map(repr, missing))}")
    if step is not None:
        for job_id, names in steps.jobs_without_step(connection, ids, step).items():
            recorded = ", ".join(map(repr, names)) or "none"
            raise StepNotFoundError(f"job {job_id} has no step {step!r}; its steps: {recorded}")


def _logged(event: str, job_ids: list[str]) -> list[str]:
    for job_id in job_ids:
        log.info(event, job_id=job_id)
    return job_ids
