"""Listing jobs for operators, newest first, in two widths over one filter and one plan:
whole rows (:func:`list_jobs`, for the API and the CLI) and the columns a list page shows
(:func:`list_summaries`, for the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, Connection, func, literal_column, select

from jobqueue.schema import TERMINAL_STATUSES, job_queue
from jobqueue.store.jobs import JobRecord

COMMON_ROWS = 2000  # see _common


@dataclass(frozen=True)
class JobSummary:
    """A job as a list shows it. Not its arguments, error or result: each may weigh megabytes,
    and a list page of 500 rows must not read 500 of them."""

    id: str
    name: str
    queue: str
    status: str
    attempts: int
    created_at: datetime
    finished_at: datetime | None


def list_jobs(
    connection: Connection,
    *,
    status: str | None,
    queue: str | None,
    name: str | None,
    limit: int,
    before: str | None,
) -> list[JobRecord]:
    """Newest first; ``before`` is the last id seen (keyset on the ULID, not OFFSET)."""
    where = _list_filters(connection, status=status, queue=queue, name=name, before=before)
    query = select(job_queue).where(*where).order_by(job_queue.c.id.desc()).limit(limit)
    return [JobRecord.from_row(row) for row in connection.execute(query).mappings()]


class Listing(TypedDict, total=False):
    """The keywords of :func:`list_summaries`, for the callers that pass them on."""

    status: str | None
    queue: str | None
    name: str | None
    limit: int
    before: str | None


def list_summaries(
    connection: Connection,
    *,
    status: str | None = None,
    queue: str | None = None,
    name: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> list[JobSummary]:
    """What :func:`list_jobs` finds, reading only the columns of :class:`JobSummary`."""
    where = _list_filters(connection, status=status, queue=queue, name=name, before=before)
    columns = [job_queue.c[field.name] for field in fields(JobSummary)]
    query = select(*columns).where(*where).order_by(job_queue.c.id.desc()).limit(limit)
    return [JobSummary(**row) for row in connection.execute(query).mappings()]


def _list_filters(
    connection: Connection,
    *,
    status: str | None,
    queue: str | None,
    name: str | None,
    before: str | None,
) -> list[ColumnElement[bool]]:
    """The WHERE of a jobs list, in the plan that suits the backend (see :func:`_common`): one
    place, so both widths of the list always find the same jobs the same way."""
    walk = connection.dialect.name == "sqlite" and _common(connection, status, queue)
    # "+column" keeps SQLite from using an index on that column (as in claims.py).
    status_column: Any = literal_column("+job_queue.status") if walk else job_queue.c.status
    queue_column: Any = literal_column("+job_queue.queue") if walk else job_queue.c.queue
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(status_column == status)
        if status in TERMINAL_STATUSES:
            # Always true for these statuses; said so that PostgreSQL and SQLite may use
            # ix_job_queue_status_queue, which indexes only finished rows.
            where.append(job_queue.c.finished_at.is_not(None))
    if queue is not None:
        where.append(queue_column == queue)
    if name is not None:
        where.append(job_queue.c.name == name)
    if before is not None:
        where.append(job_queue.c.id < before)
    return where


def _common(connection: Connection, status: str | None, queue: str | None) -> bool:
    """Whether a listing filtered on status alone or queue alone should walk the primary key
    newest first, checking each row, rather than fetch every match and sort it.

    SQLite keeps no statistics unless someone runs ANALYZE, so its planner always takes the
    index on the filtered column and sorts all its rows: 1.2 s for the succeeded jobs among a
    million. A probe that counts at most COMMON_ROWS matches in that index (well under a
    millisecond) tells which plan wins: with that many matches the walk meets a page of them
    soon; with fewer, sorting them is cheap. Status and queue together are served by
    ix_job_queue_status_queue in id order already.
    """
    if (status is None) == (queue is None):
        return False
    condition = job_queue.c.status == status if status else job_queue.c.queue == queue
    matches = select(job_queue.c.id).where(condition).limit(COMMON_ROWS).subquery()
    found = connection.execute(select(func.count()).select_from(matches)).scalar_one()
    return int(found) >= COMMON_ROWS
