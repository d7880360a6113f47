"""The recorded starts of rate-limited keys (``job_rate_starts``): what each sliding window
has left, when a full one frees, and forgetting starts that have left every window. The gate
(:mod:`jobqueue.store.gate`) reads and writes them with the keys' rows locked."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select

from jobqueue.rate_limits import Window
from jobqueue.schema import job_rate_starts


def rate_room(
    connection: Connection, windows: dict[str, list[Window]], now: datetime
) -> dict[tuple[str, Window], int]:
    """Per rate key and window: its count less the cost started in it (one query per
    distinct window length)."""
    left = {(key, w): w.count for key, ws in windows.items() for w in ws}
    by_length: dict[float, list[str]] = defaultdict(list)
    for key, ws in windows.items():
        for window in ws:
            by_length[window.seconds].append(key)
    for seconds, keys in by_length.items():
        used = connection.execute(
            select(job_rate_starts.c.key, func.sum(job_rate_starts.c.cost))
            .where(
                job_rate_starts.c.key.in_(sorted(set(keys))),
                job_rate_starts.c.started_at > now - timedelta(seconds=seconds),
            )
            .group_by(job_rate_starts.c.key)
        ).all()
        for key, cost in used:
            for window in windows[key]:
                if window.seconds == seconds:
                    left[(key, window)] -= int(cost)
    return left


def frees_at(
    connection: Connection, key: str, windows: list[Window], cost: int, now: datetime
) -> datetime:
    """When every window of ``key`` has room for ``cost`` again: the start whose leaving
    makes room, plus the window's length (the latest over the windows)."""
    latest = now
    for window in windows:
        length = timedelta(seconds=window.seconds)
        rows = connection.execute(
            select(job_rate_starts.c.started_at, job_rate_starts.c.cost)
            .where(job_rate_starts.c.key == key, job_rate_starts.c.started_at > now - length)
            .order_by(job_rate_starts.c.started_at)
        ).all()
        used = sum(row.cost for row in rows)
        for row in rows:
            if used + cost <= window.count:
                break
            used -= row.cost
            latest = max(latest, row.started_at + length)
    return latest


def forget_old_starts(
    connection: Connection, windows: dict[str, list[Window]], keys: set[str], now: datetime
) -> None:
    """Delete starts that have left every window of their key, and are a day old at least
    (jobs of another kind may share the key with a longer window, not waiting just now): one
    statement per horizon among ``keys`` (usually one), not one per key."""
    by_horizon: dict[float, list[str]] = defaultdict(list)
    for key in keys:
        longest = max(window.seconds for window in windows[key])
        by_horizon[max(longest, KEEP_AT_LEAST)].append(key)
    for seconds, group in sorted(by_horizon.items()):
        connection.execute(
            delete(job_rate_starts).where(
                job_rate_starts.c.key.in_(sorted(group)),
                job_rate_starts.c.started_at <= now - timedelta(seconds=seconds),
            )
        )


#: Seconds a start is kept at least, whatever the windows of the key's waiting jobs.
KEEP_AT_LEAST = 86_400.0
