"""The ``job_processes`` table: who is alive, by heartbeat on the database's clock.

Every supervisor and worker registers under a fresh ULID each time it starts. Which processes
are dead is decided in :mod:`jobqueue.runtime.maintenance`; deleting a dead process's row here
orphans the jobs it held for rescue, and tells the process itself (if it comes back) that it
must stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, delete, insert, select, update

from jobqueue.schema import job_processes
from jobqueue.store.dialect import db_now, db_now_minus


@dataclass(frozen=True)
class ProcessRow:
    id: str
    kind: str
    hostname: str
    pid: int
    supervisor_id: str | None
    queues: str | None
    started_at: datetime
    last_heartbeat_at: datetime


def register(
    connection: Connection,
    *,
    process_id: str,
    kind: str,
    hostname: str,
    pid: int,
    queues: Sequence[str] | None = None,
    supervisor_id: str | None = None,
) -> None:
    now = db_now(connection.dialect.name)
    connection.execute(
        insert(job_processes).values(
            id=process_id,
            kind=kind,
            hostname=hostname,
            pid=pid,
            supervisor_id=supervisor_id,
            queues=",".join(queues) if queues is not None else "*",
            started_at=now,
            last_heartbeat_at=now,
        )
    )


def renew(connection: Connection, process_id: str) -> tuple[datetime | None, datetime]:
    """Refresh the heartbeat; returns the previous one (None: the row is gone) and the
    database clock's now, so the caller can tell how long it was out of contact."""
    dialect = connection.dialect.name
    now: datetime = connection.execute(select(db_now(dialect))).scalar_one()
    previous = connection.execute(
        select(job_processes.c.last_heartbeat_at).where(job_processes.c.id == process_id)
    ).scalar_one_or_none()
    if previous is None or not heartbeat(connection, process_id):
        return None, now
    return previous, now


def heartbeat(connection: Connection, process_id: str) -> bool:
    """Refresh the heartbeat; False means the row is gone: this process was declared dead."""
    result = connection.execute(
        update(job_processes)
        .where(job_processes.c.id == process_id)
        .values(last_heartbeat_at=db_now(connection.dialect.name))
    )
    return bool(result.rowcount == 1)


def is_registered(connection: Connection, process_id: str) -> bool:
    return (
        connection.execute(
            select(job_processes.c.id).where(job_processes.c.id == process_id)
        ).first()
        is not None
    )


def deregister(connection: Connection, process_id: str) -> None:
    connection.execute(delete(job_processes).where(job_processes.c.id == process_id))


def all_processes(connection: Connection) -> list[ProcessRow]:
    rows = connection.execute(select(job_processes).order_by(job_processes.c.id)).mappings()
    return [ProcessRow(**row) for row in rows]


def dead_candidates(
    connection: Connection, *, hostname: str, threshold_seconds: float | None
) -> list[ProcessRow]:
    """Rows whose heartbeat is older than the threshold (database clock), and every row of
    ``hostname`` (whose pids the caller can check); ``threshold_seconds=None``: only the
    latter."""
    condition: ColumnElement[bool] = job_processes.c.hostname == hostname
    if threshold_seconds is not None:
        condition = condition | _stale(connection, threshold_seconds)
    rows = connection.execute(select(job_processes).where(condition)).mappings()
    return [ProcessRow(**row) for row in rows]


def delete_dead(
    connection: Connection, process_id: str, *, stale_after: float | None = None
) -> bool:
    """Delete a dead process's row; with ``stale_after`` only if its heartbeat is still that
    old, so a process that heartbeat in the meantime survives. True if it was deleted."""
    condition = job_processes.c.id == process_id
    if stale_after is not None:
        condition = condition & _stale(connection, stale_after)
    return bool(connection.execute(delete(job_processes).where(condition)).rowcount == 1)


def _stale(connection: Connection, threshold_seconds: float) -> ColumnElement[bool]:
    return job_processes.c.last_heartbeat_at < db_now_minus(
        connection.dialect.name, threshold_seconds
    )


def delete_process(connection: Connection, process_id: str) -> ProcessRow | None:
    """Delete one process row (the supervisor saw that child exit)."""
    row = (
        connection.execute(select(job_processes).where(job_processes.c.id == process_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    connection.execute(delete(job_processes).where(job_processes.c.id == process_id))
    return ProcessRow(**row)
