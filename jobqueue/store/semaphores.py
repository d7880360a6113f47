"""Concurrency limits: ``held`` of ``max_running`` slots per key in ``job_semaphores``. A slot is
taken when a job starts (by the claim, :mod:`jobqueue.store.gate`) and given back when its
attempt ends, however it ends (success, failure, retry, release, rescue): a job that waits,
for its first attempt or for a retry's backoff, holds none."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import Connection, case, select, update

from jobqueue.schema import job_semaphores
from jobqueue.store.dialect import insert_ignoring_duplicate


def ensure_semaphore(connection: Connection, key: str, limit: int | None) -> None:
    """Make sure ``key`` has its row, with ``limit`` slots (None: no concurrency limit, a row
    for a rate key's turn). Read first: an enqueue should not queue behind a claim holding
    the row, nor rewrite it when nothing changed."""
    row = connection.execute(
        select(job_semaphores.c.max_running).where(job_semaphores.c.key == key)
    ).first()
    if row is None:
        connection.execute(
            insert_ignoring_duplicate(connection.dialect.name, job_semaphores, ["key"]).values(
                key=key, max_running=limit, held=0
            )
        )
    elif limit is not None and row.max_running != limit:
        connection.execute(
            update(job_semaphores).where(job_semaphores.c.key == key).values(max_running=limit)
        )


def release_slots(connection: Connection, keys: Iterable[str]) -> None:
    """Give back one slot per entry of ``keys`` (an attempt of that key left ``running``), in
    the caller's transaction. Keys are taken in sorted order so concurrent releasers never
    deadlock; the next claim starts the key's waiting jobs."""
    for key, count in sorted(Counter(keys).items()):
        connection.execute(
            update(job_semaphores)
            .where(job_semaphores.c.key == key, job_semaphores.c.held > 0)
            .values(
                held=case((job_semaphores.c.held > count, job_semaphores.c.held - count), else_=0)
            )
        )
