"""Unique keys: a job whose key an unfinished job holds is not written again (the holder is
returned), and a debounced one hands its arguments and start time to a holder that has not
started. The database's partial unique index on ``unique_key`` decides, so concurrent
enqueuers agree; a key is cleared when its job ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update

from jobqueue.schema import BLOCKED, PENDING, job_queue
from jobqueue.store.dialect import insert_ignoring_duplicate, is_mysql, locking


def insert_unique(connection: Connection, row: Mapping[str, Any]) -> str | None:
    """Insert a job whose ``unique_key`` must not be held by another unfinished job (pending,
    blocked or running: the key is cleared when a job ends).

    Returns None when inserted, else the id of the job holding the key. The database's unique
    index decides, so concurrent enqueuers agree; the conflict is skipped rather than raised
    (see :func:`~jobqueue.store.dialect.insert_ignoring_duplicate`). If the holder finishes
    between the conflict and the look-up, try again.
    """
    dialect = connection.dialect.name
    key = row["unique_key"]
    # The unique index is partial (only set keys): the conflict target says so.
    statement = insert_ignoring_duplicate(
        dialect, job_queue, ["unique_key"], where=job_queue.c.unique_key.is_not(None)
    ).values(**row)
    for _ in range(10):
        if is_mysql(dialect):
            if connection.execute(statement).rowcount == 1:
                return None
        elif connection.execute(statement.returning(job_queue.c.id)).scalar() is not None:
            return None
        holder = connection.execute(
            select(job_queue.c.id).where(job_queue.c.unique_key == key)
        ).scalar()
        if holder is not None:
            return str(holder)
    raise RuntimeError(f"could not insert or find the unique job with key {key}")


def insert_debounced(connection: Connection, row: Mapping[str, Any]) -> str | None:
    """Insert a debounced job, or hand its arguments and start time to the job holding its
    key, if that one has not started (pending or blocked); returns None when inserted, else the
    holder's id.

    A holder that has started (running) or waits for dependencies keeps running as it is, but
    gives its key up: the call is written as a new job, behind it. The holder is read with its
    row locked, so a worker cannot claim it between the look and the change (a claim that got
    there first has it running by the time the lock is granted).
    """
    key = row["unique_key"]
    for _ in range(10):
        holder = connection.execute(
            locking(
                connection,
                select(job_queue.c.id, job_queue.c.status).where(job_queue.c.unique_key == key),
            )
        ).first()
        if holder is not None and holder.status in (PENDING, BLOCKED):
            connection.execute(
                update(job_queue)
                .where(job_queue.c.id == holder.id)
                .values(
                    args=row["args"],
                    scheduled_for=row["scheduled_for"],
                    priority=row["priority"],
                    expires_at=row.get("expires_at"),
                )
            )
            return str(holder.id)
        if holder is not None:
            connection.execute(
                update(job_queue).where(job_queue.c.id == holder.id).values(unique_key=None)
            )
        if insert_unique(connection, row) is None:
            return None
    raise RuntimeError(f"could not insert or find the debounced job with key {key}")
