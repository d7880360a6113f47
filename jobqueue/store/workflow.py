"""The workflow cascade: what a job's end means for its batch and for the jobs that depend on
it, written in the transaction that records the end (see :mod:`jobqueue.batches`).

- A member's end moves its batch's counts. The transaction that takes ``unfinished`` to 0
  enqueues the batch's callbacks: only one transaction can, so they are enqueued exactly once,
  and a crash rolls them back with the outcome that caused them.
- A callback's end moves its batch's callback count; at 0 the batch has finished, which is the
  end of a member of its parent batch and of a dependency of whatever depends on the batch.
- A dependency's end makes a waiting dependent due when it was its last open one; if it did
  not succeed and the dependent said ``"cancel"``, the dependent is cancelled, which is its
  end, and so on down the graph.

No scan: every step reads or writes rows by key. Rows are locked in id order (batches sorted,
dependents sorted) so that concurrent outcomes queue rather than deadlock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, or_, select, update
from ulid import ULID

from jobqueue.errors import BatchFinishedError
from jobqueue.schema import (
    BLOCKED,
    CANCELLED,
    EXPIRED,
    FAILED,
    PENDING,
    SUCCEEDED,
    job_batches,
    job_queue,
)
from jobqueue.store.dependencies import Ended, batch_outcome, settle_dependents
from jobqueue.store.dialect import notify_enqueued
from jobqueue.store.semaphores import ensure_semaphore

#: The callbacks a batch can have, in the order they are enqueued.
CALLBACK_KINDS = ("on_complete", "on_success", "on_failure")


def finish(connection: Connection, ended: Sequence[Ended], now: datetime) -> None:
    """Carry the ends of ``ended`` through batches and dependents, in the caller's
    transaction, until nothing more ends."""
    work = list(ended)
    while work:
        following = settle_dependents(connection, [e for e in work if e.has_dependents], now)
        following += _count_members(connection, [e for e in work if e.batch_id], now)
        following += _count_callbacks(connection, [e for e in work if e.callback_of], now)
        work = following


def _batch(connection: Connection, batch_id: str) -> Row[Any] | None:
    return connection.execute(select(job_batches).where(job_batches.c.id == batch_id)).first()


def _grouped(pairs: Iterable[tuple[str | None, str]]) -> list[tuple[str, Counter[str]]]:
    """(batch id, its ends counted by status) in id order: the order batch rows are locked in,
    so that concurrent outcomes queue rather than deadlock."""
    by_batch: dict[str, Counter[str]] = {}
    for batch_id, status in pairs:
        assert batch_id is not None
        by_batch.setdefault(batch_id, Counter())[status] += 1
    return sorted(by_batch.items())


def _count_members(connection: Connection, ended: list[Ended], now: datetime) -> list[Ended]:
    """Move the counts of the batches ``ended`` are members of; returns the batches that
    finished (members done and no callback to wait for)."""
    finished: list[Ended] = []
    for batch_id, counts in _grouped((item.batch_id, item.status) for item in ended):
        connection.execute(
            update(job_batches)
            .where(job_batches.c.id == batch_id, job_batches.c.members_done_at.is_(None))
            .values(
                unfinished=job_batches.c.unfinished - sum(counts.values()),
                succeeded=job_batches.c.succeeded + counts[SUCCEEDED],
                failed=job_batches.c.failed + counts[FAILED],
                cancelled=job_batches.c.cancelled + counts[CANCELLED] + counts[EXPIRED],
            )
        )
        row = _batch(connection, batch_id)
        if row is not None and row.unfinished <= 0 and row.members_done_at is None:
            finished += _members_done(connection, row, now)
    return finished


def _members_done(connection: Connection, row: Row[Any], now: datetime) -> list[Ended]:
    """Every member has finished: enqueue the callbacks that apply (on_complete always,
    on_success if every member succeeded, else on_failure); with none, the batch is done."""
    specs = json.loads(row.callbacks) if row.callbacks else {}
    wanted = ["on_complete", "on_success" if row.failed + row.cancelled == 0 else "on_failure"]
    chosen = [specs[kind] for kind in CALLBACK_KINDS if kind in wanted and kind in specs]
    callback_ids = _insert_callbacks(connection, row.id, chosen, now)
    connection.execute(
        update(job_batches)
        .where(job_batches.c.id == row.id)
        .values(
            members_done_at=now,
            callback_ids=json.dumps(callback_ids),
            callbacks_unfinished=len(callback_ids),
        )
    )
    return [] if callback_ids else _batch_finished(connection, row.id, now)


def _insert_callbacks(
    connection: Connection, batch_id: str, specs: list[dict[str, Any]], now: datetime
) -> list[str]:
    """Insert the callback jobs (specs as :func:`callback_spec` made them)."""
    rows = []
    for spec in specs:
        key, limit = spec["concurrency_key"], spec["concurrency_limit"]
        if key is not None:
            ensure_semaphore(connection, key, int(limit))  # its slot is taken when it starts
        status = PENDING if key is None else BLOCKED
        rows.append(
            {
                "id": str(ULID()),
                "name": spec["name"],
                "args": spec["args"],
                "queue": spec["queue"],
                "priority": spec["priority"],
                "max_attempts": spec["max_attempts"],
                "concurrency_key": key,
                "status": status,
                "scheduled_for": now,
                "attempts": 0,
                "failed_attempts": 0,
                "created_at": now,
                "callback_of": batch_id,
            }
        )
    if rows:
        connection.execute(job_queue.insert(), rows)
        notify_enqueued(connection, {r["queue"] for r in rows})
    return [r["id"] for r in rows]


def _count_callbacks(connection: Connection, ended: list[Ended], now: datetime) -> list[Ended]:
    """Move the callback counts of the batches whose callbacks ended; returns the batches
    that finished."""
    finished: list[Ended] = []
    for batch_id, counts in _grouped((item.callback_of, item.status) for item in ended):
        connection.execute(
            update(job_batches)
            .where(job_batches.c.id == batch_id, job_batches.c.finished_at.is_(None))
            .values(
                callbacks_unfinished=job_batches.c.callbacks_unfinished - sum(counts.values()),
                callbacks_failed=job_batches.c.callbacks_failed
                + sum(n for status, n in counts.items() if status != SUCCEEDED),
            )
        )
        row = _batch(connection, batch_id)
        if row is not None and row.finished_at is None and (row.callbacks_unfinished or 0) <= 0:
            finished += _batch_finished(connection, batch_id, now)
    return finished


def _batch_finished(connection: Connection, batch_id: str, now: datetime) -> list[Ended]:
    """Mark the batch finished; it ends as a member of its parent and as a dependency."""
    connection.execute(
        update(job_batches).where(job_batches.c.id == batch_id).values(finished_at=now)
    )
    row = _batch(connection, batch_id)
    assert row is not None
    return [Ended(batch_id, batch_outcome(row), batch_id=row.parent_id)]


def add_members(connection: Connection, counts: dict[str, int]) -> set[str]:
    """Count new members into their batches ({batch id: how many}), which must not have
    seen their last member finish (a ``BatchFinishedError`` names the batch then). Returns
    those of them that were cancelled: what joins them is to be cancelled too."""
    for batch_id in sorted(counts):
        result = connection.execute(
            update(job_batches)
            .where(job_batches.c.id == batch_id, job_batches.c.members_done_at.is_(None))
            .values(
                total=job_batches.c.total + counts[batch_id],
                unfinished=job_batches.c.unfinished + counts[batch_id],
            )
        )
        if result.rowcount != 1:
            exists = _batch(connection, batch_id) is not None
            raise BatchFinishedError(
                f"batch {batch_id} "
                + (
                    "has finished: every member ended and its callbacks were enqueued"
                    if exists
                    else "does not exist"
                )
            )
    return set(
        connection.execute(
            select(job_batches.c.id).where(
                job_batches.c.id.in_(list(counts)), job_batches.c.cancelled_at.is_not(None)
            )
        ).scalars()
    )


def settle_if_empty(connection: Connection, batch_ids: Sequence[str], now: datetime) -> None:
    """Batches (children first) that have no unfinished member are done now: an empty batch,
    or one whose every member was cancelled as it was written."""
    for batch_id in batch_ids:
        row = _batch(connection, batch_id)
        if row is not None and row.unfinished <= 0 and row.members_done_at is None:
            finish(connection, _members_done(connection, row, now), now)


def reopen(connection: Connection, job_ids: Sequence[str]) -> None:
    """Jobs an operator retries (failed or cancelled) count as unfinished again in their
    batch while it waits for members (or for callbacks, for a callback); once that phase is
    over, the retried job leaves the batch and runs on its own (its callbacks have run)."""
    rows = connection.execute(
        select(job_queue.c.id, job_queue.c.status, job_queue.c.batch_id, job_queue.c.callback_of)
        .where(
            job_queue.c.id.in_(list(job_ids)),
            or_(job_queue.c.batch_id.is_not(None), job_queue.c.callback_of.is_not(None)),
        )
        .order_by(job_queue.c.id)
    ).all()
    for row in rows:
        if row.batch_id is not None:
            reopened = connection.execute(
                update(job_batches)
                .where(job_batches.c.id == row.batch_id, job_batches.c.members_done_at.is_(None))
                .values(
                    unfinished=job_batches.c.unfinished + 1,
                    failed=job_batches.c.failed - int(row.status == FAILED),
                    cancelled=job_batches.c.cancelled - int(row.status in (CANCELLED, EXPIRED)),
                )
            ).rowcount
            column = "batch_id"
        else:
            reopened = connection.execute(
                update(job_batches)
                .where(job_batches.c.id == row.callback_of, job_batches.c.finished_at.is_(None))
                .values(
                    callbacks_unfinished=job_batches.c.callbacks_unfinished + 1,
                    callbacks_failed=job_batches.c.callbacks_failed - 1,
                )
            ).rowcount
            column = "callback_of"
        if not reopened:
            connection.execute(
                update(job_queue).where(job_queue.c.id == row.id).values({column: None})
            )


def callback_spec(
    *,
    name: str,
    args: str,
    queue: str,
    priority: int,
    max_attempts: int,
    concurrency_key: str | None,
    concurrency_limit: int | None,
) -> dict[str, Any]:
    """A callback as the batch row keeps it (``args`` already encoded, as in a job row)."""
    return {
        "name": name,
        "args": args,
        "queue": queue,
        "priority": priority,
        "max_attempts": max_attempts,
        "concurrency_key": concurrency_key,
        "concurrency_limit": concurrency_limit,
    }
