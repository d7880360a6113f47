"""The attempt history (``job_errors``): each counted failed attempt's error and the process
that ran it. ``last_error`` on the job row keeps only the latest; this keeps them all, for the
Django tasks backend's ``TaskResult.errors`` and ``worker_ids`` (Django counts an attempt per
worker that ran it). Written only where a failure is counted, so a success costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from jobqueue.schema import job_errors


@dataclass(frozen=True)
class FailedAttempt:
    """One counted failed attempt: its number, who ran it, its error record (JSON), when."""

    attempt: int
    process_id: str
    error: str
    failed_at: datetime


def record_failed_attempt(
    connection: Connection, *, job_id: str, attempt: int, process_id: str, error: str, now: datetime
) -> None:
    """Add the attempt to the history, in the transaction that counted its failure."""
    connection.execute(
        insert(job_errors).values(
            job_id=job_id, attempt=attempt, process_id=process_id, error=error, failed_at=now
        )
    )


def failed_attempts(connection: Connection, job_id: str) -> list[FailedAttempt]:
    """The job's failed attempts, oldest first."""
    rows = connection.execute(
        select(
            job_errors.c.attempt,
            job_errors.c.process_id,
            job_errors.c.error,
            job_errors.c.failed_at,
        )
        .where(job_errors.c.job_id == job_id)
        .order_by(job_errors.c.attempt)
    )
    return [FailedAttempt(*row) for row in rows]


def delete_history(connection: Connection, job_ids: Sequence[str]) -> None:
    """Delete the history of these jobs (pruned or discarded with them)."""
    if job_ids:
        connection.execute(delete(job_errors).where(job_errors.c.job_id.in_(list(job_ids))))
