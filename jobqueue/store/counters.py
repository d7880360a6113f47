"""Per-minute outcome counters (``job_stats``), bumped in the transaction that records the
outcomes, so the figures survive pruning and never go down."""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from jobqueue.schema import CANCELLED, EXPIRED, FAILED, PENDING, SUCCEEDED, job_stats
from jobqueue.store.dialect import dialect_insert, is_mysql

STAT_KINDS = ("succeeded", "retried", "failed", "discarded", "expired")
#: The status an attempt left its job in -> the counter it adds to (a failed attempt that
#: will be retried leaves the job pending).
STAT_KIND = {
    SUCCEEDED: "succeeded",
    PENDING: "retried",
    FAILED: "failed",
    CANCELLED: "discarded",
    EXPIRED: "expired",
}


@functools.cache
def _upsert(dialect: str) -> Any:
    """INSERT ... add-on-conflict for ``dialect``, built once; values come as parameters."""
    if is_mysql(dialect):
        mysql_statement = dialect_insert(dialect, job_stats)
        return mysql_statement.on_duplicate_key_update(
            {kind: job_stats.c[kind] + mysql_statement.inserted[kind] for kind in STAT_KINDS}
        )
    new = dialect_insert(dialect, job_stats)
    return new.on_conflict_do_update(
        index_elements=["minute", "queue", "process_id"],
        set_={kind: job_stats.c[kind] + new.excluded[kind] for kind in STAT_KINDS},
    )


def bump_stats(
    connection: Connection,
    *,
    shard: str,
    now: datetime,
    counts: Mapping[str, Mapping[str, int]],
) -> None:
    """Add outcome counts (queue -> {kind in STAT_KINDS: n}) to this minute's
    counters, in the caller's transaction. ``shard`` (the writing process) keeps concurrent
    writers off one another's rows."""
    minute = now.replace(second=0, microsecond=0)
    for queue, by_kind in counts.items():
        values = {"minute": minute, "queue": queue, "process_id": shard}
        values.update({kind: by_kind.get(kind, 0) for kind in STAT_KINDS})
        connection.execute(_upsert(connection.dialect.name), values)


def bump_outcomes(
    connection: Connection, *, shard: str, now: datetime, outcomes: Iterable[tuple[str, str]]
) -> None:
    """Count attempts that ended, given as (queue, status the attempt left the job in)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for queue, status in outcomes:
        counts[queue][STAT_KIND[status]] += 1
    if counts:
        bump_stats(connection, shard=shard, now=now, counts=counts)


def sums(
    connection: Connection, *, since: datetime, queues: Iterable[str] | None = None
) -> tuple[int, ...]:
    """Outcome counts after ``since`` (of ``queues``, default all), in STAT_KINDS order."""
    query = select(*_sums()).where(job_stats.c.minute > since)
    if queues is not None:
        query = query.where(job_stats.c.queue.in_(list(queues)))
    return tuple(int(value) for value in connection.execute(query).one())


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(job_stats.c[kind]), 0) for kind in STAT_KINDS]


def per_minute(connection: Connection, *, since: datetime) -> dict[datetime, tuple[int, ...]]:
    """Outcome counts of each minute after ``since``, summed over queues and processes, in
    :data:`STAT_KINDS` order. Minutes with no outcome are absent."""
    rows = connection.execute(
        select(job_stats.c.minute, *_sums())
        .where(job_stats.c.minute > since)
        .group_by(job_stats.c.minute)
    ).all()
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}


def totals_by_queue(connection: Connection) -> dict[str, tuple[int, ...]]:
    """Every outcome ever counted, per queue, in :data:`STAT_KINDS` order: the figures behind
    monotonic counters, since the counters table is never pruned."""
    rows = connection.execute(select(job_stats.c.queue, *_sums()).group_by(job_stats.c.queue)).all()
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}
