"""Concurrency limits: slots per key in ``job_semaphores``. A job holds a slot from the moment
it is pending until it ends; without one it waits as ``blocked`` and is promoted, oldest first,
in the transaction that frees a slot."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select, update

from jobqueue.schema import BLOCKED, PENDING, job_queue, job_semaphores
from jobqueue.store.dialect import insert_ignoring_duplicate


def ensure_semaphore(connection: Connection, key: str, limit: int) -> None:
    """Create ``key``'s semaphore with ``limit`` slots if it is new (for a job that will take
    its slot later: one waiting for its dependencies)."""
    row = {"key": key, "max_running": limit, "held": 0}
    connection.execute(
        insert_ignoring_duplicate(connection.dialect.name, job_semaphores, ["key"]).values(**row)
    )


def acquire_slot(connection: Connection, key: str, limit: int) -> bool:
    """Take one of ``limit`` slots of ``key``; False means the job must wait as blocked."""
    row = {"key": key, "max_running": limit, "held": 0}
    connection.execute(
        insert_ignoring_duplicate(connection.dialect.name, job_semaphores, ["key"]).values(**row)
    )
    result = connection.execute(
        update(job_semaphores)
        .where(job_semaphores.c.key == key, job_semaphores.c.held < limit)
        .values(held=job_semaphores.c.held + 1, max_running=limit)
    )
    return bool(result.rowcount == 1)


def release_slots(connection: Connection, keys: Iterable[str]) -> list[str]:
    """Give back one slot per entry of ``keys`` (a job of that key ended), in the caller's
    transaction: the slot passes to the oldest blocked job of the key, which becomes pending,
    or is freed. Keys are taken in sorted order so concurrent releasers never deadlock.
    Returns the ids of the promoted jobs."""
    promoted: list[str] = []
    locking = connection.dialect.name != "sqlite"
    for key in sorted(keys):
        query = select(job_semaphores.c.held, job_semaphores.c.max_running).where(
            job_semaphores.c.key == key
        )
        semaphore = connection.execute(query.with_for_update() if locking else query).first()
        if semaphore is None:
            continue
        if semaphore.held <= semaphore.max_running:
            oldest = (
                select(job_queue.c.id)
                .where(job_queue.c.concurrency_key == key, job_queue.c.status == BLOCKED)
                .order_by(job_queue.c.id)
                .limit(1)
            )
            job_id = connection.execute(
                oldest.with_for_update(skip_locked=True) if locking else oldest
            ).scalar()
            if job_id is not None:
                connection.execute(
                    update(job_queue)
                    .where(job_queue.c.id == job_id, job_queue.c.status == BLOCKED)
                    .values(status=PENDING)
                )
                promoted.append(job_id)
                continue
        connection.execute(
            update(job_semaphores)
            .where(job_semaphores.c.key == key, job_semaphores.c.held > 0)
            .values(held=job_semaphores.c.held - 1)
        )
    return promoted
