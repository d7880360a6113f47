"""The gate: jobs with a concurrency key or a rate key wait as ``blocked`` until their key lets
them start, and the claim starts them here, in its transaction.

1. Due blocked jobs are read ranked within their key (``ROW_NUMBER()`` over the key, in claim
   order), keys whose slots are all taken left out: every key's first job comes before any
   key's second, and among keys the one served longest ago (``served_at``) goes first. A
   tenant's backlog of 100,000 therefore delays another tenant's single job by no more than
   one claim.
2. The keys' rows are locked in key order, and each key's room read: free slots
   (``max_running - held``), and per sliding window of a rate key, its count less the cost of
   the starts recorded in it (``job_rate_starts``).
3. Jobs are taken in rank order while their keys have room, marked running as any claim
   does, and their keys charged: a slot held, a start recorded, ``served_at`` moved on.
4. The waiting jobs of a rate key that ran out of room move to when its window frees, so
   later claims do not read them again until then.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, case, exists, func, insert, or_, select, update

from jobqueue.rate_limits import Window, stored_windows
from jobqueue.schema import BLOCKED, EXPIRED, RUNNING, job_processes, job_queue, job_rate_starts
from jobqueue.schema import job_semaphores as keys_table
from jobqueue.store.claimed import CLAIM_COLUMNS, CLAIM_VALUES, ClaimedJob
from jobqueue.store.dialect import insert_ignoring_duplicate, is_mysql, locking_skipped
from jobqueue.store.due import DUE_ORDER
from jobqueue.store.rate_starts import forget_old_starts, frees_at, rate_room

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def claim_keyed(
    connection: Connection,
    *,
    process_id: str,
    queue: str | None,
    paused: Sequence[str],
    limit: int,
    now: datetime,
    plain_heads: Sequence[tuple[Any, ...]] = (),
) -> list[ClaimedJob]:
    """Start up to ``limit`` due blocked jobs of ``queue`` (None: every unpaused queue) that
    their keys have room for; returns them as claimed (expired ones included, see
    :mod:`jobqueue.store.claiming`).

    ``plain_heads``: the claim order (priority, scheduled_for, id) of the plain jobs due in
    the queue, up to ``limit``. Keyed jobs take only the share of the claim that their own
    order earns against them, so a keyed job never jumps an older plain one; which keyed jobs
    fill that share is the keys' turn order."""
    candidates = _candidates(connection, queue, paused, limit, now)
    if not candidates:
        return []
    room = _Room.locked(connection, candidates, now)
    admitted = [job for job in candidates if room.admit(job)][:limit]
    chosen = [job.id for job in admitted][: _share(admitted, plain_heads, limit)]
    claimed = _start(connection, process_id, chosen, now) if chosen else []
    started = [job for job in claimed if job.status == RUNNING]
    room.charge(connection, started, {job.id: job for job in candidates}, now)
    room.push_back_full(connection, candidates, now)
    return claimed


def _share(admitted: list[Row[Any]], plain_heads: Sequence[tuple[Any, ...]], limit: int) -> int:
    """How many of the claim's ``limit`` places the keyed jobs earn: merged with the plain
    jobs in claim order, the number of keyed ones among the first ``limit``."""
    if not plain_heads:
        return limit
    keyed = [(job.priority, job.scheduled_for, job.id) for job in admitted]
    merged = sorted([(head, 0) for head in plain_heads] + [(order, 1) for order in keyed])
    return sum(flag for _, flag in merged[:limit])


def _candidates(
    connection: Connection, queue: str | None, paused: Sequence[str], limit: int, now: datetime
) -> list[Row[Any]]:
    # The key a job takes turns under: its rate key, unless that is its queue's (shared by
    # every job of the queue), when its concurrency key (a tenant, say) is the better turn.
    queue_wide = job_queue.c.rate_key.like("queue:%")
    turn_key = case(
        (queue_wide, func.coalesce(job_queue.c.concurrency_key, job_queue.c.rate_key)),
        else_=func.coalesce(job_queue.c.rate_key, job_queue.c.concurrency_key),
    )
    slots = keys_table.alias("slots")
    ranked = (
        select(
            job_queue.c.id,
            job_queue.c.concurrency_key,
            job_queue.c.rate_key,
            job_queue.c.rate_cost,
            job_queue.c.rate_limits,
            job_queue.c.priority,
            job_queue.c.scheduled_for,
            turn_key.label("turn_key"),
            func.row_number().over(partition_by=turn_key, order_by=DUE_ORDER).label("turn"),
        )
        .outerjoin(slots, slots.c.key == job_queue.c.concurrency_key)
        .where(
            job_queue.c.status == BLOCKED,
            job_queue.c.scheduled_for <= now,
            or_(slots.c.max_running.is_(None), slots.c.held < slots.c.max_running),
        )
    )
    if queue is not None:
        ranked = ranked.where(job_queue.c.queue == queue)
    elif paused:
        ranked = ranked.where(job_queue.c.queue.not_in(list(paused)))
    inner = ranked.subquery()
    served = keys_table.alias("served")
    query = (
        select(inner)
        .outerjoin(served, served.c.key == inner.c.turn_key)
        .where(inner.c.turn <= limit)
        .order_by(
            inner.c.turn,
            func.coalesce(served.c.served_at, _NEVER),
            inner.c.priority,
            inner.c.scheduled_for,
            inner.c.id,
        )
        .limit(limit * 2)
    )
    return list(connection.execute(query).all())


@dataclass
class _Room:
    """What each key of this claim lets start, read with the keys' rows locked."""

    slots: dict[str, int | None] = field(default_factory=dict)
    #: Keys whose rows another transaction holds: nothing of theirs starts in this claim.
    busy: set[str] = field(default_factory=set)
    #: (rate key, window) -> cost that may still start in it now.
    left: dict[tuple[str, Window], int] = field(default_factory=dict)
    windows: dict[str, list[Window]] = field(default_factory=dict)
    #: Rate keys a waiting job could not start under, with the smallest such job's cost.
    full: dict[str, int] = field(default_factory=dict)

    @classmethod
    def locked(cls, connection: Connection, candidates: list[Row[Any]], now: datetime) -> _Room:
        room = cls()
        for job in candidates:  # every window of the key's waiting jobs must have room
            if job.rate_key is not None:
                seen = room.windows.setdefault(job.rate_key, [])
                seen += [w for w in stored_windows(job.rate_limits) if w not in seen]
        keys = {job.concurrency_key for job in candidates if job.concurrency_key} | set(
            room.windows
        )
        rows = _lock_keys(connection, sorted(keys))
        for row in rows:
            room.slots[row.key] = (
                None if row.max_running is None else max(0, row.max_running - row.held)
            )
        room.busy = keys - {row.key for row in rows}
        room.left = rate_room(connection, room.windows, now)
        return room

    def admit(self, job: Row[Any]) -> bool:
        """Whether ``job`` may start now; if so, its keys' room is taken."""
        concurrency, rate = job.concurrency_key, job.rate_key
        if concurrency in self.busy or rate in self.busy:
            return False
        if concurrency is not None and self.slots.get(concurrency) == 0:
            return False
        cost = job.rate_cost or 1
        if rate is not None:
            if any(self.left[(rate, w)] < cost for w in self.windows[rate]):
                self.full[rate] = min(cost, self.full.get(rate, cost))
                return False
            for window in self.windows[rate]:
                self.left[(rate, window)] -= cost
        if concurrency is not None and self.slots.get(concurrency) is not None:
            self.slots[concurrency] = (self.slots[concurrency] or 0) - 1
        return True

    def charge(
        self,
        connection: Connection,
        started: list[ClaimedJob],
        candidates: dict[str, Row[Any]],
        now: datetime,
    ) -> None:
        """Charge the keys of the jobs that did start (a job found expired, or claimed by
        another worker meanwhile, takes nothing)."""
        held = Counter(job.concurrency_key for job in started if job.concurrency_key)
        for key, count in sorted(held.items()):
            connection.execute(
                update(keys_table)
                .where(keys_table.c.key == key)
                .values(held=keys_table.c.held + count)
            )
        rows = [candidates[job.id] for job in started if job.id in candidates]
        starts = [
            {"key": row.rate_key, "started_at": now, "job_id": row.id, "cost": row.rate_cost or 1}
            for row in rows
            if row.rate_key is not None
        ]
        if starts:
            connection.execute(insert(job_rate_starts), starts)
            forget_old_starts(connection, self.windows, {s["key"] for s in starts}, now)
        served = sorted({row.turn_key for row in rows})
        if served:
            connection.execute(
                update(keys_table).where(keys_table.c.key.in_(served)).values(served_at=now)
            )

    def push_back_full(
        self, connection: Connection, candidates: list[Row[Any]], now: datetime
    ) -> None:
        """Move the jobs read of rate keys out of room to when their windows free, so the next
        claims read the key's later jobs, or none of it, until then (a bounded write per
        claim, where moving a key's whole backlog would rewrite it every window)."""
        for key, cost in sorted(self.full.items()):
            free_at = frees_at(connection, key, self.windows[key], cost, now)
            read = [job.id for job in candidates if job.rate_key == key]
            movable = locking_skipped(
                connection,
                select(job_queue.c.id).where(
                    job_queue.c.id.in_(read),
                    job_queue.c.status == BLOCKED,
                    job_queue.c.scheduled_for < free_at,
                ),
            )
            ids = list(connection.execute(movable).scalars())
            if ids:
                connection.execute(
                    update(job_queue).where(job_queue.c.id.in_(ids)).values(scheduled_for=free_at)
                )


def _lock_keys(connection: Connection, keys: list[str]) -> list[Row[Any]]:
    """The keys' rows that no other transaction holds, locked in key order (a rate key's row
    is made on its first claim). A held key is left out rather than waited for: a claim
    never waits on a key, so it cannot deadlock with an outcome or an operator giving a
    slot back in another order; the key's jobs start in a later claim."""
    query = locking_skipped(
        connection,
        select(keys_table.c.key, keys_table.c.max_running, keys_table.c.held)
        .where(keys_table.c.key.in_(keys))
        .order_by(keys_table.c.key),
    )
    rows = list(connection.execute(query).all())
    missing = set(keys) - {row.key for row in rows}
    if missing:
        connection.execute(
            insert_ignoring_duplicate(connection.dialect.name, keys_table, ["key"]),
            [{"key": key, "max_running": None, "held": 0} for key in sorted(missing)],
        )
        rows = list(connection.execute(query).all())
    return rows


def _start(
    connection: Connection, process_id: str, ids: list[str], now: datetime
) -> list[ClaimedJob]:
    """Mark the chosen jobs running (or expired), as the plain claim does; a job another
    worker took meanwhile is no longer blocked and is left alone."""
    order = {job_id: index for index, job_id in enumerate(ids)}  # the rank order
    registered = exists().where(job_processes.c.id == process_id)
    where = (job_queue.c.id.in_(ids), job_queue.c.status == BLOCKED, registered)
    params = {"process_id": process_id, "now": now}
    dialect = connection.dialect.name
    if dialect != "sqlite":  # rows being changed elsewhere (a cancel) are skipped
        locked = locking_skipped(connection, select(job_queue.c.id).where(*where))
        ids = list(connection.execute(locked).scalars())
        if not ids:
            return []
        where = (job_queue.c.id.in_(ids), job_queue.c.status == BLOCKED, registered)
    mark = update(job_queue).where(*where).values(**CLAIM_VALUES)
    if is_mysql(dialect):
        connection.execute(mark, params)
        rows = connection.execute(
            select(*CLAIM_COLUMNS).where(
                job_queue.c.id.in_(ids),
                job_queue.c.claimed_by == process_id,
                job_queue.c.status.in_([RUNNING, EXPIRED]),
            )
        )
    else:
        rows = connection.execute(mark.returning(*CLAIM_COLUMNS), params)
    jobs = [ClaimedJob(**row) for row in rows.mappings()]
    return sorted(jobs, key=lambda job: order[job.id])
