"""The ``job_processes`` table: who is alive, by heartbeat on the database's clock.

Every supervisor and worker registers under a fresh ULID each time it starts. A process is
dead when its heartbeat is older than the threshold (measured with the database clock, so a
host with a skewed clock is not declared dead), or when it ran on this host and its pid is
gone. Its row is then deleted, which orphans the jobs it held for :mod:`jobqueue.maintenance`
to rescue, and tells the process itself (if it comes back) that it must stop.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import ColumnElement, Connection, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from jobqueue.db import db_now, db_now_minus, is_transient
from jobqueue.errors import JobQueueError
from jobqueue.schema import job_processes

if TYPE_CHECKING:
    from jobqueue.queue import JobQueue

log = structlog.get_logger("jobqueue.processes")


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


def hostname() -> str:
    """This host as seen by pids: the hostname plus, on Linux, the boot id and the pid
    namespace, so containers that share a hostname (host networking, replicas) but not their
    pids never judge one another's processes by pid."""
    name = socket.gethostname()
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return name
    return f"{name}:{boot}:{namespace}"


def register(
    connection: Connection,
    *,
    process_id: str,
    kind: str,
    queues: Sequence[str] | None = None,
    supervisor_id: str | None = None,
) -> None:
    now = db_now(connection.dialect.name)
    connection.execute(
        insert(job_processes).values(
            id=process_id,
            kind=kind,
            hostname=hostname(),
            pid=os.getpid(),
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


def deregister(connection: Connection, process_id: str) -> None:
    connection.execute(delete(job_processes).where(job_processes.c.id == process_id))


def all_processes(connection: Connection) -> list[ProcessRow]:
    rows = connection.execute(select(job_processes).order_by(job_processes.c.id)).mappings()
    return [ProcessRow(**row) for row in rows]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process on this host (a zombie, killed but not yet reaped by
    an init that does not reap, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def delete_dead(connection: Connection, *, threshold_seconds: float | None) -> list[ProcessRow]:
    """Delete the rows of dead processes and return them.

    Dead: heartbeat older than the threshold (database clock), or on this host with its pid
    gone. ``threshold_seconds=None`` checks pids only, for when heartbeat ages cannot be trusted
    (see ``Supervisor._maintain``). The delete repeats the staleness condition, so a process
    that heartbeats in the meantime survives.
    """
    here = hostname()
    on_this_host = job_processes.c.hostname == here
    stale: ColumnElement[bool] | None = None
    if threshold_seconds is not None:
        dialect = connection.dialect.name
        stale = job_processes.c.last_heartbeat_at < db_now_minus(dialect, threshold_seconds)
    dead: list[ProcessRow] = []
    candidates = connection.execute(
        select(job_processes).where(on_this_host if stale is None else stale | on_this_host)
    ).mappings()
    for row in [ProcessRow(**r) for r in candidates]:
        gone = row.hostname == here and not pid_alive(row.pid)
        if not gone and stale is None:
            continue
        condition = job_processes.c.id == row.id
        if not gone:
            condition = condition & stale
        if connection.execute(delete(job_processes).where(condition)).rowcount == 1:
            dead.append(row)
    return dead


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


def resident_memory_mb() -> float:
    """Current resident set size in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def start_when_reachable(
    jobqueue: JobQueue,
    register: Callable[[], None],
    *,
    process_id: str,
    sleep: Callable[[float], None],
    stopping: Callable[[], bool],
) -> bool:
    """Check the schema and run ``register``, waiting out a database that is down or locked.

    ``jobrunner work`` is often started together with its database (a container stack, a
    reboot), so an unreachable database is waited for, with backoff, and logged; a schema or
    configuration error is raised at once. Returns False if a stop was requested meanwhile.
    """
    delay = 0.1
    while True:
        try:
            jobqueue.verify_schema()
            register()
            return True
        except (JobQueueError, DBAPIError) as error:
            if not is_transient(error):
                raise
            log.warning(
                "process_start_waiting",
                process_id=process_id,
                error=str(error).splitlines()[0],
                retry_in=delay,
            )
        sleep(delay)
        if stopping():
            return False
        delay = min(delay * 2, 5.0)
