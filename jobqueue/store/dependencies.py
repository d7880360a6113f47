"""Dependencies (``depends_on``): the edges, and what a dependency's end does to the jobs
waiting on it. A dependent waits (status ``waiting``, no claim looks at it) with a count of
its open dependencies; the transaction that ends its last one makes it pending, and one that
ends a dependency without success cancels it when it said ``"cancel"``. Part of the cascade of
:mod:`jobqueue.store.workflow`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from jobqueue.error_record import ErrorRecord
from jobqueue.schema import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    WAITING,
    job_dependencies,
    job_queue,
)
from jobqueue.store.dialect import locking, notify_enqueued
from jobqueue.store.due import waiting_status


@dataclass(frozen=True)
class Ended:
    """A job or a batch that has just finished, as the cascade needs it."""

    id: str
    #: SUCCEEDED, FAILED, CANCELLED or EXPIRED.
    status: str
    #: The batch it is a member of.
    batch_id: str | None = None
    #: The batch whose callback it is.
    callback_of: str | None = None
    #: False only when it is known that nothing depends on it.
    has_dependents: bool = True


_DECREMENT = (
    update(job_queue)
    .where(job_queue.c.id == bindparam("dependent"), job_queue.c.status == WAITING)
    .values(open_dependencies=job_queue.c.open_dependencies - bindparam("finished"))
)


def settle_dependents(connection: Connection, ended: list[Ended], now: datetime) -> list[Ended]:
    """Release or cancel the jobs waiting on ``ended``; returns the ones cancelled."""
    if not ended:
        return []
    succeeded = {e.id: e.status == SUCCEEDED for e in ended}
    awaited = (
        job_dependencies.c.dependency_id.in_(list(succeeded)),
        job_dependencies.c.awaited.is_(True),
    )
    edges = connection.execute(
        select(
            job_dependencies.c.dependency_id,
            job_dependencies.c.dependent_id,
            job_dependencies.c.run_on_failure,
        ).where(*awaited)
    ).all()
    if not edges:
        return []
    connection.execute(update(job_dependencies).where(*awaited).values(awaited=False))
    satisfied: Counter[str] = Counter()
    doomed: dict[str, str] = {}
    for dependency, dependent, run_on_failure in edges:
        if succeeded[dependency] or run_on_failure:
            satisfied[dependent] += 1
        else:
            doomed.setdefault(dependent, dependency)
    cancelled = cancel_dependents(connection, doomed, now)
    released = sorted(d for d in satisfied if d not in doomed)
    if released:
        connection.execute(
            _DECREMENT, [{"dependent": d, "finished": satisfied[d]} for d in released]
        )
        make_ready(connection, released)
    return cancelled


def make_ready(connection: Connection, job_ids: Sequence[str]) -> list[str]:
    """Waiting jobs among ``job_ids`` with no open dependency left become pending (blocked,
    if a key decides when they start); returns the ids that moved."""
    ready = connection.execute(
        select(job_queue.c.id, job_queue.c.queue).where(
            job_queue.c.id.in_(list(job_ids)),
            job_queue.c.status == WAITING,
            job_queue.c.open_dependencies <= 0,
        )
    ).all()
    moved = []
    for job_id, queue in ready:
        result = connection.execute(
            update(job_queue)
            .where(job_queue.c.id == job_id, job_queue.c.status == WAITING)
            .values(status=waiting_status(), open_dependencies=None)
        )
        if result.rowcount == 1:
            moved.append((job_id, queue))
    notify_enqueued(connection, {queue for _, queue in moved})
    return [job_id for job_id, _ in moved]


def batch_outcome(row: Any) -> str:
    """A finished batch as one status: succeeded when every member and callback did,
    cancelled when it was cancelled and something did not, else failed."""
    if row.failed + row.cancelled + row.callbacks_failed == 0:
        return SUCCEEDED
    return CANCELLED if row.cancelled_at is not None else FAILED


def cancel_dependents(connection: Connection, doomed: dict[str, str], now: datetime) -> list[Ended]:
    """Cancel the waiting jobs ``{dependent: the dependency that did not succeed}``."""
    if not doomed:
        return []
    rows = connection.execute(
        locking(
            connection,
            select(
                job_queue.c.id,
                job_queue.c.batch_id,
                job_queue.c.callback_of,
                job_queue.c.has_dependents,
            )
            .where(job_queue.c.id.in_(sorted(doomed)), job_queue.c.status == WAITING)
            .order_by(job_queue.c.id),
        )
    ).all()
    for row in rows:
        error = ErrorRecord(
            "jobqueue.DependencyFailed",
            f"cancelled: its dependency {doomed[row.id]} did not succeed "
            '(on_dependency_failure="cancel")',
        )
        connection.execute(
            update(job_queue)
            .where(job_queue.c.id == row.id, job_queue.c.status == WAITING)
            .values(
                status=CANCELLED,
                finished_at=now,
                unique_key=None,
                open_dependencies=None,
                last_error=error.to_json(),
            )
        )
    return [Ended(r.id, CANCELLED, r.batch_id, r.callback_of, bool(r.has_dependents)) for r in rows]


def delete_edges(connection: Connection, job_ids: Sequence[str]) -> None:
    """Delete the edges from and to deleted jobs (pruned or discarded)."""
    if job_ids:
        # Two statements, each on its own index (an OR of the two can scan the table).
        for column in (job_dependencies.c.dependent_id, job_dependencies.c.dependency_id):
            connection.execute(delete(job_dependencies).where(column.in_(list(job_ids))))
