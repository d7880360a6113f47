"""Batches as operators and the API see them: writing a batch with its jobs, reading one back
with its jobs counted by status, listing, cancelling a whole tree, and a dependent's view of
its dependencies' results. The counting itself is :mod:`jobqueue.store.workflow`'s.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from jobqueue.schema import (
    BLOCKED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    WAITING,
    job_batches,
    job_dependencies,
    job_queue,
)
from jobqueue.store import cancelling, operator, workflow
from jobqueue.store.dependencies import batch_outcome
from jobqueue.store.depends_on import Needs
from jobqueue.store.dialect import locking
from jobqueue.store.jobs import insert_rows

#: How many ids go in one IN list when a whole batch is cancelled.
_CHUNK = 1000


@dataclass(frozen=True)
class BatchRecord:
    """One batch: its counters, its callbacks, and its jobs counted by status."""

    id: str
    parent_id: str | None
    description: str | None
    total: int
    unfinished: int
    succeeded: int
    failed: int
    cancelled: int
    callback_kinds: tuple[str, ...]
    callback_ids: tuple[str, ...]
    callbacks_unfinished: int | None
    callbacks_failed: int
    created_at: datetime
    members_done_at: datetime | None
    finished_at: datetime | None
    cancelled_at: datetime | None
    #: The batch's own jobs (nested batches' excepted) by status, read from the index.
    jobs: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``running`` while members are unfinished, ``finishing`` while its callbacks run,
        then ``succeeded``, ``failed`` or ``cancelled`` (see :func:`batch_outcome`)."""
        if self.finished_at is not None:
            return batch_outcome(self)
        return "running" if self.members_done_at is None else "finishing"

    @classmethod
    def from_row(cls, row: Row[Any], jobs: dict[str, int]) -> BatchRecord:
        values = dict(row._mapping)
        callbacks = json.loads(values.pop("callbacks") or "{}")
        values["callback_kinds"] = tuple(callbacks)
        values["callback_ids"] = tuple(json.loads(values.pop("callback_ids") or "[]"))
        return cls(**values, jobs=jobs)


def write_batches(
    connection: Connection,
    batches: Sequence[dict[str, Any]],
    rows: list[dict[str, Any]],
    limits: list[int | None],
    needs: Sequence[Needs | None],
    now: datetime,
    bounds: Mapping[str, int] | None = None,
) -> dict[int, str]:
    """Insert batch rows (parents before children) and their jobs in the caller's
    transaction; returns what :func:`~jobqueue.store.jobs.insert_rows` returns.

    Nested batches are counted into their parents before any job is written, so no parent
    can look finished while a child is being filled; a batch that ends up with nothing
    unfinished (empty, or every job cancelled as written) is done at once. A batch written
    into a cancelled parent is cancelled with it."""
    connection.execute(job_batches.insert(), list(batches))
    parents = Counter(b["parent_id"] for b in batches if b["parent_id"] is not None)
    workflow.add_members(connection, dict(parents))
    existing = insert_rows(connection, rows, limits, needs, bounds)
    workflow.settle_if_empty(connection, [b["id"] for b in reversed(batches)], now)
    top = batches[0]
    if top["parent_id"] is not None:
        parent = fetch_batch(connection, top["parent_id"], with_jobs=False)
        if parent is not None and parent.cancelled_at is not None:
            cancel_batch(connection, top["id"], now)
    return existing


def fetch_batch(
    connection: Connection, batch_id: str, *, with_jobs: bool = True
) -> BatchRecord | None:
    row = connection.execute(select(job_batches).where(job_batches.c.id == batch_id)).first()
    if row is None:
        return None
    jobs: dict[str, int] = {}
    if with_jobs:
        counts = connection.execute(
            select(job_queue.c.status, func.count())
            .where(job_queue.c.batch_id == batch_id)
            .group_by(job_queue.c.status)
        ).all()
        jobs = {status: int(n) for status, n in counts}
    return BatchRecord.from_row(row, jobs)


def list_batches(
    connection: Connection, *, unfinished_only: bool = False, limit: int = 50
) -> list[BatchRecord]:
    """The newest batches first (counters only)."""
    query = select(job_batches).order_by(job_batches.c.id.desc()).limit(limit)
    if unfinished_only:
        query = query.where(job_batches.c.finished_at.is_(None))
    return [BatchRecord.from_row(row, {}) for row in connection.execute(query)]


def batch_jobs(
    connection: Connection, batch_id: str, *, statuses: Sequence[str], limit: int = 50
) -> list[tuple[str, str, str]]:
    """(id, name, status) of the batch's jobs in ``statuses``, oldest first."""
    rows = connection.execute(
        select(job_queue.c.id, job_queue.c.name, job_queue.c.status)
        .where(job_queue.c.batch_id == batch_id, job_queue.c.status.in_(list(statuses)))
        .order_by(job_queue.c.id)
        .limit(limit)
    ).all()
    return [(r.id, r.name, r.status) for r in rows]


@dataclass(frozen=True)
class CancelReport:
    """What cancelling a batch did: jobs cancelled before they ran, running jobs asked to
    stop, and every batch of the tree (the batch and its nested ones)."""

    cancelled: set[str]
    stopping: set[str]
    batches: list[str]


def cancel_batch(connection: Connection, batch_id: str, now: datetime) -> CancelReport | None:
    """Cancel the batch and its nested batches: their waiting, pending and blocked jobs are
    cancelled (and so, through the cascade, the dependents that said "cancel"), their
    running jobs are asked to stop. The callbacks still run once, when the last member has
    ended. None if there is no such batch."""
    # The tree is read with its rows locked, root first: a nested batch being written under
    # one of them waits (it counts itself into its parent) and then finds its parent cancelled.
    tree, frontier = [batch_id], [batch_id]
    root = select(job_batches.c.id).where(job_batches.c.id == batch_id)
    connection.execute(locking(connection, root))
    while frontier:
        children = select(job_batches.c.id).where(job_batches.c.parent_id.in_(frontier))
        frontier = list(
            connection.execute(locking(connection, children.order_by(job_batches.c.id))).scalars()
        )
        tree += frontier
    found = connection.execute(
        update(job_batches)
        .where(job_batches.c.id.in_(tree))
        .values(cancelled_at=func.coalesce(job_batches.c.cancelled_at, now))
    ).rowcount
    if not found:
        return None
    members = list(
        connection.execute(
            select(job_queue.c.id).where(
                job_queue.c.batch_id.in_(tree),
                job_queue.c.status.in_([WAITING, PENDING, BLOCKED, RUNNING]),
            )
        ).scalars()
    )
    cancelled: set[str] = set()
    stopping: set[str] = set()
    for start in range(0, len(members), _CHUNK):
        chunk = members[start : start + _CHUNK]
        # Asked to stop before and after the unstarted are cancelled: a job handed back to
        # pending in between is cancelled, one claimed in between is asked to stop.
        stopping |= operator.request_cancel(connection, chunk, now)
        cancelled |= cancelling.cancel_waiting(connection, chunk, now)
        running = [job_id for job_id in chunk if job_id not in cancelled]
        stopping |= operator.request_cancel(connection, running, now)
    return CancelReport(cancelled, stopping, tree)


def dependency_results(connection: Connection, job_id: str) -> dict[str, str | None]:
    """{dependency job id: its stored result (JSON text, None for none)} of the dependencies
    of ``job_id`` that succeeded."""
    rows = connection.execute(
        select(job_queue.c.id, job_queue.c.result)
        .join(job_dependencies, job_dependencies.c.dependency_id == job_queue.c.id)
        .where(job_dependencies.c.dependent_id == job_id, job_queue.c.status == SUCCEEDED)
    ).all()
    return {r.id: r.result for r in rows}


def prune_finished(connection: Connection, *, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` jobs (members, then callbacks) of the batch that finished
    first, before ``cutoff``, and the batch once nothing of it is left; returns the rows
    deleted (0: nothing to prune)."""
    row = connection.execute(
        select(job_batches.c.id, job_batches.c.callback_ids)
        .where(job_batches.c.finished_at < cutoff)
        .order_by(job_batches.c.finished_at)
        .limit(1)
    ).first()
    if row is None:
        return 0
    members = list(
        connection.execute(
            select(job_queue.c.id).where(job_queue.c.batch_id == row.id).limit(limit)
        ).scalars()
    )
    callbacks = json.loads(row.callback_ids or "[]")
    if members or callbacks:
        operator.delete_jobs(connection, members or callbacks)
        if not members:
            connection.execute(
                update(job_batches).where(job_batches.c.id == row.id).values(callback_ids="[]")
            )
        return len(members or callbacks)
    connection.execute(delete(job_batches).where(job_batches.c.id == row.id))
    return 1
