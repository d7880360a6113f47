"""What is due: the one predicate a claim and a read-only look at the backlog share, and the
reads a worker makes between claims (when the next job is due, how many run).

A job is due when it is ``pending`` and ``scheduled_for <= now``. The claim
(:mod:`jobqueue.store.claims`) takes due jobs; :func:`due_jobs` only reads them, in the order a
claim would take them, so an operator or a conformance suite can ask "is this lost job still
found?" without taking anything. Both walk the claim indexes (``ix_job_queue_claim`` for a
named queue, ``ix_job_queue_claim_all`` for every queue), so the read stays as flat as the
claim when the table holds millions of finished rows; :func:`explain_due_jobs` shows the plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
)

from jobqueue.schema import BLOCKED, PENDING, RUNNING, UTCDateTime, job_queue, job_queue_pauses
from jobqueue.store.dialect import db_now

#: Columns of a due job as :func:`due_jobs` returns it (never its arguments: they may be large).
DUE_COLUMNS = (
    job_queue.c.id,
    job_queue.c.name,
    job_queue.c.queue,
    job_queue.c.priority,
    job_queue.c.scheduled_for,
    job_queue.c.attempts,
)

#: A job that a key lets start (a concurrency or a rate key): it waits as ``blocked``.
KEYED = or_(job_queue.c.concurrency_key.is_not(None), job_queue.c.rate_key.is_not(None))


def waiting_status() -> ColumnElement[str]:
    """The status a job waits in when it goes back to waiting (a retry, a release, a rescue,
    its dependencies done): ``blocked`` if a key decides when it starts, else ``pending``."""
    return case((KEYED, BLOCKED), else_=PENDING)


def row_waiting_status(row: Mapping[str, Any]) -> str:
    """:func:`waiting_status` of a row about to be written."""
    return BLOCKED if row.get("concurrency_key") or row.get("rate_key") else PENDING


#: The order a claim takes due jobs in, and the order :func:`due_jobs` lists them.
DUE_ORDER = (job_queue.c.priority, job_queue.c.scheduled_for, job_queue.c.id)


@dataclass(frozen=True)
class DueJob:
    """A job that a worker on its queue would claim now."""

    id: str
    name: str
    queue: str
    priority: int
    scheduled_for: datetime
    attempts: int


def due_condition(dialect: str, now: Any) -> list[ColumnElement[bool]]:
    """``status = 'pending' AND scheduled_for <= now``: the claim's predicate, in the form
    that keeps each backend on the claim index.

    SQLite's planner (no statistics) would rather range-scan ``ix_job_queue_due`` and sort
    every due row; ``+scheduled_for`` rules that index out, leaving the one whose order is the
    ORDER BY, so a read of LIMIT rows reads only those.
    """
    scheduled_for: Any = job_queue.c.scheduled_for
    if dialect == "sqlite":
        scheduled_for = literal_column("+job_queue.scheduled_for", UTCDateTime())
    return [job_queue.c.status == PENDING, scheduled_for <= now]


def due_query(
    dialect: str, *, queue: str | None, paused: Sequence[str], now: Any, status: str = PENDING
) -> Select[Any, Any, Any, Any, Any, Any]:
    """Due jobs of one queue (``None``: every unpaused queue), in claim order: ``pending``
    ones, or with ``status=BLOCKED`` those waiting for their key (which a claim takes first,
    as far as their keys have room)."""
    query = select(*DUE_COLUMNS).where(*due_condition(dialect, now))
    if status != PENDING:
        query = select(*DUE_COLUMNS).where(
            job_queue.c.status == status, job_queue.c.scheduled_for <= now
        )
    if queue is not None:
        query = query.where(job_queue.c.queue == queue)
    elif paused:
        query = query.where(job_queue.c.queue.not_in(list(paused)))
    return query.order_by(*DUE_ORDER)


def paused_queues(connection: Connection) -> list[str]:
    return list(connection.execute(select(job_queue_pauses.c.queue)).scalars())


def due_jobs(
    connection: Connection, *, queues: Sequence[str] | None, limit: int | None, now: datetime
) -> list[DueJob]:
    """Up to ``limit`` due jobs in the order a worker on ``queues`` claims them: queue by queue
    in the listed order, paused queues skipped, as the claim does; in each queue those waiting
    for their key first (``blocked``: a claim starts them as far as their keys have room), then
    ``pending`` ones. Reads only."""
    paused = paused_queues(connection)
    found: list[DueJob] = []
    for queue in queues if queues is not None else [None]:
        if queue is not None and queue in paused:
            continue
        for status in (BLOCKED, PENDING):  # jobs with a key first, as a claim takes them
            if limit is not None and len(found) >= limit:
                return found
            query = due_query(
                connection.dialect.name, queue=queue, paused=paused, now=now, status=status
            )
            if limit is not None:
                query = query.limit(limit - len(found))
            found.extend(DueJob(**row) for row in connection.execute(query).mappings())
    return found


def explain_due_jobs(connection: Connection, *, queue: str | None, limit: int | None) -> Any:
    """The plan the database chooses for :func:`due_jobs` over one queue (``None``: all):
    PostgreSQL's ``EXPLAIN (FORMAT JSON)`` plan object with sequential scans ruled out (so a
    plan that still scans is one no index can serve), MySQL's ``EXPLAIN FORMAT=JSON`` document,
    SQLite's ``EXPLAIN QUERY PLAN`` detail lines. Run it in a transaction of its own. "Now" is
    the database's clock, so the statement can be shown with its values inline."""
    dialect = connection.dialect.name
    now = db_now(dialect)
    query = due_query(dialect, queue=queue, paused=paused_queues(connection), now=now)
    if limit is not None:
        query = query.limit(limit)
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    if dialect == "postgresql":
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        row = connection.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
        document = json.loads(row) if isinstance(row, str) else row
        return document[0]["Plan"]
    if dialect == "sqlite":
        rows = connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return [str(row[-1]) for row in rows]
    return json.loads(connection.execute(text(f"EXPLAIN FORMAT=JSON {compiled}")).scalar_one())


def next_due_at(connection: Connection, queues: Sequence[str] | None) -> datetime | None:
    """When the earliest pending or blocked job of these (unpaused) queues is due, or None.

    ``ORDER BY scheduled_for LIMIT 1`` walks of the (status, scheduled_for) or (queue,
    status, scheduled_for) index, one per status: each reads one entry, where a MIN() with a
    correlated pause filter would read every waiting row. A blocked job that is due may still
    have to wait for its key: the claim that finds so sleeps as on an idle poll.
    """
    paused = set(connection.execute(select(job_queue_pauses.c.queue)).scalars())
    times = []
    for status in (PENDING, BLOCKED):
        earliest = (
            select(job_queue.c.scheduled_for)
            .where(job_queue.c.status == status)
            .order_by(job_queue.c.scheduled_for)
            .limit(1)
        )
        if queues is None:
            if paused:
                earliest = earliest.where(job_queue.c.queue.not_in(paused))
            times.append(connection.execute(earliest).scalar())
            continue
        times += [
            connection.execute(earliest.where(job_queue.c.queue == queue)).scalar()
            for queue in queues
            if queue not in paused
        ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


def running_count(connection: Connection, queues: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(job_queue).where(job_queue.c.status == RUNNING)
    if queues is not None:
        query = query.where(job_queue.c.queue.in_(list(queues)))
    return int(connection.execute(query).scalar_one())


def scheduled_later(connection: Connection, now: datetime) -> tuple[int, datetime | None]:
    """How many pending jobs are not due yet, and when the first of them is."""
    count, first = connection.execute(
        select(func.count(), func.min(job_queue.c.scheduled_for)).where(
            job_queue.c.status == PENDING, job_queue.c.scheduled_for > now
        )
    ).one()
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    return int(count), first
