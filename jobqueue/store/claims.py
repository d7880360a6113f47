"""Claiming: take due jobs for a worker (the reads between claims, when the next job is due
and how many run, are in :mod:`jobqueue.store.due`). The fenced changes of a claimed job are
in :mod:`jobqueue.store.attempts`; :mod:`jobqueue.store.claiming` ends the expired ones.

The hot-path statements are built once with bound parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    exists,
    null,
    select,
    update,
)

from jobqueue.schema import (
    BLOCKED,
    job_processes,
    job_queue,
    job_queue_pauses,
)
from jobqueue.store.claimed import (
    CLAIM_COLUMNS,
    CLAIM_VALUES,
    P_IDS,
    P_LIMIT,
    P_NOW,
    P_PAUSED,
    P_PROCESS,
    P_QUEUE,
    ClaimedJob,
)
from jobqueue.store.dialect import is_mysql
from jobqueue.store.due import DUE_ORDER, due_condition, due_query
from jobqueue.store.gate import claim_keyed


@functools.cache
def _claim_statements(dialect: str, by_queue: bool, skip_paused: bool) -> tuple[Any, ...]:
    # A process that was declared dead (its row deleted) claims nothing, even before its next
    # heartbeat tells it so.
    registered = exists().where(job_processes.c.id == P_PROCESS)
    # The due predicate and order are :mod:`jobqueue.store.due`'s, shared with the read-only
    # JobQueue.due_jobs(), so what it lists is exactly what a claim would take.
    due = select(job_queue.c.id).where(*due_condition(dialect, P_NOW), registered)
    if by_queue:
        due = due.where(job_queue.c.queue == P_QUEUE)
    if skip_paused:
        # The paused queues are read first and passed as a list: a NOT EXISTS against the
        # pauses table made PostgreSQL expect almost no rows and sort every due job on each
        # claim (5x slower with a million finished rows) instead of walking the claim index.
        due = due.where(job_queue.c.queue.not_in(P_PAUSED))
    due = due.order_by(*DUE_ORDER)
    due = due.limit(P_LIMIT)
    if is_mysql(dialect):
        # MySQL has no UPDATE ... RETURNING and no LIMIT inside IN (subquery).
        return (
            due.with_for_update(skip_locked=True),
            update(job_queue).where(job_queue.c.id.in_(P_IDS)).values(**CLAIM_VALUES),
            select(*CLAIM_COLUMNS).where(job_queue.c.id.in_(P_IDS)),
        )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        update(job_queue)
        .where(job_queue.c.id.in_(due))
        .values(**CLAIM_VALUES)
        .returning(*CLAIM_COLUMNS),
    )


def claim_jobs(
    connection: Connection,
    *,
    process_id: str,
    queues: Sequence[str] | None,
    limit: int,
    now: datetime,
) -> list[ClaimedJob]:
    """Mark up to ``limit`` due jobs running for ``process_id`` and return them in run order.

    A job found past its ``expires_at`` is marked ``expired`` instead and returned with that
    status, not to be run: :func:`jobqueue.store.claiming.claim_due` carries its end on.

    Per queue, jobs that a key lets start (:mod:`jobqueue.store.gate`) take the share of the
    claim their order earns against the plain pending jobs, which fill the rest. One query per
    queue in the listed order (an ORDER BY over a queue list cannot use an index);
    ``queues=None`` claims from every queue. Call inside a write transaction: on SQLite that
    is BEGIN IMMEDIATE (one writer), elsewhere rows are taken with SKIP LOCKED, so no job is
    ever handed to two workers.
    """
    found = list(connection.execute(_PAUSED_AND_KEYED, {"now": now}).scalars())
    paused = [queue for queue in found if queue is not None]
    keyed_due = None in found  # no blocked job is due anywhere: the gate is not asked
    claimed: list[ClaimedJob] = []
    for queue in queues if queues is not None else [None]:
        wanted = limit - len(claimed)
        if wanted <= 0:
            break
        if queue is not None and queue in paused:
            continue
        keyed = (
            claim_keyed(
                connection,
                process_id=process_id,
                queue=queue,
                paused=paused,
                limit=wanted,
                now=now,
                plain_heads=_plain_heads(connection, queue, paused, wanted, now),
            )
            if keyed_due
            else []
        )
        claimed.extend(keyed)
        if wanted > len(keyed):
            claimed.extend(
                _claim_from(connection, process_id, queue, wanted - len(keyed), now, paused)
            )
    return claimed


# The paused queues, and a NULL row if any blocked job is due: one round trip, so a claim
# with no keyed job due pays nothing for the gate.
_ANY_KEYED_DUE = (
    select(job_queue.c.id)
    .where(job_queue.c.status == BLOCKED, job_queue.c.scheduled_for <= P_NOW)
    .limit(1)
    .subquery()
)
_PAUSED_AND_KEYED = select(job_queue_pauses.c.queue).union_all(
    select(null().label("queue")).select_from(_ANY_KEYED_DUE)
)


def _plain_heads(
    connection: Connection, queue: str | None, paused: list[str], limit: int, now: datetime
) -> list[tuple[Any, ...]]:
    """The claim order of the first ``limit`` plain due jobs (read only: the plain claim takes
    them after the keyed ones have had their share)."""
    query = due_query(connection.dialect.name, queue=queue, paused=paused, now=now).limit(limit)
    return [(row.priority, row.scheduled_for, row.id) for row in connection.execute(query)]


def _claim_from(
    connection: Connection,
    process_id: str,
    queue: str | None,
    limit: int,
    now: datetime,
    paused: list[str],
) -> list[ClaimedJob]:
    skip_paused = queue is None and bool(paused)
    statements = _claim_statements(connection.dialect.name, queue is not None, skip_paused)
    params: dict[str, Any] = {
        "process_id": process_id,
        "now": now,
        "limit": limit,
        "claim_queue": queue,
    }
    if skip_paused:
        params["paused"] = paused
    if len(statements) == 3:
        select_due, mark, fetch = statements
        ids = connection.execute(select_due, params).scalars().all()
        if not ids:
            return []
        connection.execute(mark, {**params, "ids": ids})
        rows = connection.execute(fetch, {"ids": ids})
    else:
        rows = connection.execute(statements[0], params)
    # A pending job with a concurrency key slept between its steps, keeping its slot.
    jobs = [
        ClaimedJob(**row, held_slot=row["concurrency_key"] is not None) for row in rows.mappings()
    ]
    jobs.sort(key=lambda job: (job.priority, job.scheduled_for, job.id))
    return jobs
