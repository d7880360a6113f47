"""Every SQL statement jobqueue runs, as a named function over a SQLAlchemy ``Connection``.

The callers own the transaction; these functions only say what to read or write. Dialect
branches live here and in :mod:`jobqueue.db`, nowhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    bindparam,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.sql.elements import BindParameter

from jobqueue.schema import (
    BLOCKED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    VERSION_TABLE,
    UTCDateTime,
    job_cancellations,
    job_processes,
    job_queue,
    job_queue_pauses,
    job_semaphores,
    job_stats,
)
from jobqueue.serialization import decode_arguments


@dataclass(frozen=True)
class JobRecord:
    """One row of ``job_queue``, with its arguments decoded where they decode."""

    id: str
    name: str
    args_json: str
    queue: str
    priority: int
    status: str
    scheduled_for: datetime
    attempts: int
    failed_attempts: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    claimed_by: str | None
    last_error: str | None
    unique_key: str | None
    concurrency_key: str | None
    result: str | None

    @property
    def args(self) -> list[Any]:
        return decode_arguments(self.args_json)[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        return decode_arguments(self.args_json)[1]

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        values = dict(row)
        values["args_json"] = values.pop("args")
        return cls(**values)


def insert_jobs(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert job rows; several rows go as one ``executemany`` (never one giant VALUES list)."""
    if rows:
        connection.execute(job_queue.insert(), list(rows))


def insert_unique(connection: Connection, row: Mapping[str, Any]) -> str | None:
    """Insert a job whose ``unique_key`` must not be held by another pending or running job.

    Returns None when inserted, else the id of the job holding the key. The database's unique
    index decides, so concurrent enqueuers agree; the conflict is skipped (ON CONFLICT DO
    NOTHING / INSERT IGNORE) rather than raised, which would abort a caller's PostgreSQL
    transaction. If the holder finishes between the conflict and the look-up, try again.
    """
    dialect = connection.dialect.name
    key = row["unique_key"]
    for _ in range(10):
        if dialect in ("mysql", "mariadb"):
            # Every value was validated before, so IGNORE can only be skipping the duplicate.
            result = connection.execute(insert(job_queue).prefix_with("IGNORE").values(**row))
            if result.rowcount == 1:
                return None
        else:
            upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            statement = (
                upsert(job_queue)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["unique_key"])
                .returning(job_queue.c.id)
            )
            if connection.execute(statement).scalar() is not None:
                return None
        holder = connection.execute(
            select(job_queue.c.id).where(job_queue.c.unique_key == key)
        ).scalar()
        if holder is not None:
            return str(holder)
    raise RuntimeError(f"could not insert or find the unique job with key {key}")


def fetch_job(connection: Connection, job_id: str) -> JobRecord | None:
    row = connection.execute(select(job_queue).where(job_queue.c.id == job_id)).mappings().first()
    return JobRecord.from_row(row) if row is not None else None


def fetch_jobs(connection: Connection, job_ids: Iterable[str]) -> list[JobRecord]:
    ids = list(job_ids)
    rows = connection.execute(
        select(job_queue).where(job_queue.c.id.in_(ids)).order_by(job_queue.c.id)
    ).mappings()
    return [JobRecord.from_row(row) for row in rows]


def count_jobs(
    connection: Connection, *, status: str | None = None, queue: str | None = None
) -> int:
    query = select(func.count()).select_from(job_queue)
    if status is not None:
        query = query.where(job_queue.c.status == status)
    if queue is not None:
        query = query.where(job_queue.c.queue == queue)
    return int(connection.execute(query).scalar_one())


def read_schema_revision(connection: Connection) -> str | None:
    """The jobqueue alembic revision of this database, or ``None`` if it was never migrated.

    Call it on a connection of its own: on PostgreSQL a missing table aborts the transaction.
    """
    from sqlalchemy import column, table

    version = table(VERSION_TABLE, column("version_num"))
    try:
        rows = connection.execute(select(version.c.version_num)).scalars().all()
    except (ProgrammingError, DBAPIError) as error:
        if _is_missing_table(error):
            return None
        raise
    return rows[0] if rows else None


def _is_missing_table(error: DBAPIError) -> bool:
    text = str(error.orig).lower()
    return any(
        marker in text
        for marker in ("no such table", "does not exist", "doesn't exist", "undefinedtable")
    )


# -- claiming and finishing ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: what it needs to run it and to fence its final write."""

    id: str
    name: str
    args_json: str
    queue: str
    priority: int
    scheduled_for: datetime
    attempts: int
    failed_attempts: int
    max_attempts: int
    claimed_by: str
    concurrency_key: str | None = None

    @property
    def fence(self) -> tuple[str, int]:
        """(id, attempts): with claimed_by and status='running', what every final write checks."""
        return (self.id, self.attempts)


_CLAIM_COLUMNS = (
    job_queue.c.id,
    job_queue.c.name,
    job_queue.c.args.label("args_json"),
    job_queue.c.queue,
    job_queue.c.priority,
    job_queue.c.scheduled_for,
    job_queue.c.attempts,
    job_queue.c.failed_attempts,
    job_queue.c.max_attempts,
    job_queue.c.claimed_by,
    job_queue.c.concurrency_key,
)


# Statements on the hot path are built once with bound parameters, so SQLAlchemy compiles
# each only once per dialect and a claim or completion costs just its round trip.
_P_PROCESS = bindparam("process_id", type_=String())
_P_NOW = bindparam("now", type_=UTCDateTime())
_P_LIMIT = bindparam("limit", type_=Integer())
_P_QUEUE = bindparam("claim_queue", type_=String())  # not a column name: it would SET it
_P_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_P_FENCES: BindParameter[Any] = bindparam("fences", expanding=True)
_FENCED = (
    tuple_(job_queue.c.id, job_queue.c.attempts).in_(_P_FENCES),
    job_queue.c.claimed_by == _P_PROCESS,
    job_queue.c.status == RUNNING,
)
_CLAIM_VALUES = {
    "status": RUNNING,
    "claimed_by": _P_PROCESS,
    "attempts": job_queue.c.attempts + 1,
    "started_at": _P_NOW,
    "finished_at": None,
}


@functools.cache
def _claim_statements(dialect: str, by_queue: bool) -> tuple[Any, ...]:
    # A process that was declared dead (its row deleted) claims nothing, even before its next
    # heartbeat tells it so.
    registered = exists().where(job_processes.c.id == _P_PROCESS)
    unpaused = ~exists().where(job_queue_pauses.c.queue == job_queue.c.queue)
    due = select(job_queue.c.id).where(
        job_queue.c.status == PENDING, job_queue.c.scheduled_for <= _P_NOW, registered, unpaused
    )
    if by_queue:
        due = due.where(job_queue.c.queue == _P_QUEUE)
    due = due.order_by(job_queue.c.priority, job_queue.c.scheduled_for, job_queue.c.id)
    due = due.limit(_P_LIMIT)
    if dialect in ("mysql", "mariadb"):
        # MySQL has no UPDATE ... RETURNING and no LIMIT inside IN (subquery).
        return (
            due.with_for_update(skip_locked=True),
            update(job_queue).where(job_queue.c.id.in_(_P_IDS)).values(**_CLAIM_VALUES),
            select(*_CLAIM_COLUMNS).where(job_queue.c.id.in_(_P_IDS)),
        )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        update(job_queue)
        .where(job_queue.c.id.in_(due))
        .values(**_CLAIM_VALUES)
        .returning(*_CLAIM_COLUMNS),
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

    One query per queue in the listed order (an ORDER BY over a queue list cannot use an
    index); ``queues=None`` claims from every queue. Call inside a write transaction: on
    SQLite that is BEGIN IMMEDIATE (one writer), elsewhere rows are taken with SKIP LOCKED, so
    no job is ever handed to two workers.
    """
    claimed: list[ClaimedJob] = []
    for queue in queues if queues is not None else [None]:
        wanted = limit - len(claimed)
        if wanted <= 0:
            break
        claimed.extend(_claim_from(connection, process_id, queue, wanted, now))
    return claimed


def _claim_from(
    connection: Connection, process_id: str, queue: str | None, limit: int, now: datetime
) -> list[ClaimedJob]:
    statements = _claim_statements(connection.dialect.name, queue is not None)
    params = {"process_id": process_id, "now": now, "limit": limit, "claim_queue": queue}
    if len(statements) == 3:
        select_due, mark, fetch = statements
        ids = connection.execute(select_due, params).scalars().all()
        if not ids:
            return []
        connection.execute(mark, {**params, "ids": ids})
        rows = connection.execute(fetch, {"ids": ids})
    else:
        rows = connection.execute(statements[0], params)
    jobs = [ClaimedJob(**row) for row in rows.mappings()]
    jobs.sort(key=lambda job: (job.priority, job.scheduled_for, job.id))
    return jobs


def next_due_at(connection: Connection, queues: Sequence[str] | None) -> datetime | None:
    """When the earliest pending job of these queues is due (a cheap index lookup), or None."""
    pending = (job_queue.c.status == PENDING) & ~exists().where(
        job_queue_pauses.c.queue == job_queue.c.queue
    )
    if queues is None:
        query = select(func.min(job_queue.c.scheduled_for)).where(pending)
        return connection.execute(query).scalar()
    times = [
        connection.execute(
            select(func.min(job_queue.c.scheduled_for)).where(pending, job_queue.c.queue == q)
        ).scalar()
        for q in queues
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _fenced(process_id: str, fences: Sequence[tuple[str, int]]) -> list[Any]:
    return [
        tuple_(job_queue.c.id, job_queue.c.attempts).in_(list(fences)),
        job_queue.c.claimed_by == process_id,
        job_queue.c.status == RUNNING,
    ]


_COMPLETE = (
    update(job_queue).where(*_FENCED).values(status=SUCCEEDED, finished_at=_P_NOW, unique_key=None)
)
_COMPLETE_RETURNING = _COMPLETE.returning(job_queue.c.id)
_LOCK_FENCED = select(job_queue.c.id).where(*_FENCED).with_for_update()
_COMPLETE_IDS = (
    update(job_queue)
    .where(job_queue.c.id.in_(_P_IDS))
    .values(status=SUCCEEDED, finished_at=_P_NOW, unique_key=None)
)


def complete_jobs(
    connection: Connection,
    *,
    process_id: str,
    fences: Sequence[tuple[str, int]],
    now: datetime,
) -> set[str]:
    """Mark jobs succeeded, fenced; returns the ids whose write took effect.

    A job that was rescued (and perhaps re-claimed) since is left alone: a stale worker can
    never overwrite the attempt that replaced it, nor resurrect a finished job.
    """
    if not fences:
        return set()
    params = {"process_id": process_id, "fences": list(fences), "now": now}
    if connection.dialect.name in ("mysql", "mariadb"):
        # No RETURNING: lock the rows that pass the fence, then update exactly those.
        ids = set(connection.execute(_LOCK_FENCED, params).scalars())
        if ids:
            connection.execute(_COMPLETE_IDS, {"ids": list(ids), "now": now})
        return ids
    return set(connection.execute(_COMPLETE_RETURNING, params).scalars())


def record_failure(
    connection: Connection,
    job: ClaimedJob,
    *,
    error: str,
    retry_at: datetime | None,
    final_status: str,
    now: datetime,
) -> bool:
    """Count a failed attempt: back to pending at ``retry_at``, or ``final_status`` if None.

    Fenced like every final write; returns False when the job was no longer ours.
    """
    if retry_at is not None:
        values: dict[str, Any] = {"status": PENDING, "scheduled_for": retry_at}
    else:
        values = {"status": final_status, "finished_at": now, "unique_key": None}
    values["last_error"] = error
    values["failed_attempts"] = job_queue.c.failed_attempts + 1
    result = connection.execute(
        update(job_queue).where(*_fenced(job.claimed_by, [job.fence])).values(**values)
    )
    return bool(result.rowcount == 1)


def release_jobs(
    connection: Connection, *, process_id: str, fences: Sequence[tuple[str, int]], now: datetime
) -> int:
    """Hand jobs back to pending without counting a failed attempt (graceful shutdown)."""
    if not fences:
        return 0
    result = connection.execute(
        update(job_queue)
        .where(*_fenced(process_id, fences))
        .values(status=PENDING, scheduled_for=now)
    )
    return int(result.rowcount)


def held_jobs(connection: Connection, process_id: str) -> list[tuple[str, int]]:
    """(id, attempts) of the jobs the database says ``process_id`` is running."""
    rows = connection.execute(
        select(job_queue.c.id, job_queue.c.attempts).where(
            job_queue.c.claimed_by == process_id, job_queue.c.status == RUNNING
        )
    )
    return [(row.id, row.attempts) for row in rows]


def cancellation_requests(connection: Connection, job_ids: Sequence[str]) -> list[str]:
    """Which of these running jobs an operator asked to stop."""
    rows = connection.execute(
        select(job_cancellations.c.job_id).where(job_cancellations.c.job_id.in_(list(job_ids)))
    )
    return list(rows.scalars())


def orphaned_jobs(connection: Connection) -> list[ClaimedJob]:
    """Running jobs whose process row is gone: their worker died or was declared dead."""
    alive = exists().where(job_processes.c.id == job_queue.c.claimed_by)
    rows = connection.execute(
        select(*_CLAIM_COLUMNS).where(job_queue.c.status == RUNNING, ~alive)
    ).mappings()
    return [ClaimedJob(**row) for row in rows]


def rescue_job(connection: Connection, job: ClaimedJob, *, error: str, now: datetime) -> str | None:
    """Return an orphaned job to pending (or to failed when its attempts are used up), counting
    the interrupted attempt so that a job that kills its worker every time ends failed instead of
    looping. Returns the new status, or None if the job had moved on meanwhile."""
    exhausted = job.failed_attempts + 1 >= job.max_attempts
    status = "failed" if exhausted else PENDING
    values: dict[str, Any] = {"status": status, "last_error": error}
    if exhausted:
        values.update(finished_at=now, unique_key=None)
    else:
        values["scheduled_for"] = now
    values["failed_attempts"] = job_queue.c.failed_attempts + 1
    result = connection.execute(
        update(job_queue).where(*_fenced(job.claimed_by, [job.fence])).values(**values)
    )
    return status if result.rowcount == 1 else None


def running_count(connection: Connection, queues: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(job_queue).where(job_queue.c.status == RUNNING)
    if queues is not None:
        query = query.where(job_queue.c.queue.in_(list(queues)))
    return int(connection.execute(query).scalar_one())


def notify_enqueued(connection: Connection, queues: Iterable[str]) -> None:
    """PostgreSQL: wake listening workers when the enqueuing transaction commits."""
    for queue in sorted(set(queues)):
        connection.execute(select(func.pg_notify(NOTIFY_CHANNEL, queue)))


NOTIFY_CHANNEL = "jobqueue"


def bump_stats(
    connection: Connection,
    *,
    shard: str,
    now: datetime,
    counts: Mapping[str, Mapping[str, int]],
) -> None:
    """Add outcome counts (queue -> {succeeded|retried|failed|discarded: n}) to this minute's
    counters, in the caller's transaction. ``shard`` (the writing process) keeps concurrent
    writers off one another's rows."""
    minute = now.replace(second=0, microsecond=0)
    dialect = connection.dialect.name
    for queue, by_kind in counts.items():
        values = {"minute": minute, "queue": queue, "process_id": shard}
        values.update({kind: by_kind.get(kind, 0) for kind in STAT_KINDS})
        statement: Any
        if dialect in ("mysql", "mariadb"):
            mysql_statement = mysql_insert(job_stats).values(**values)
            statement = mysql_statement.on_duplicate_key_update(
                {kind: job_stats.c[kind] + mysql_statement.inserted[kind] for kind in STAT_KINDS}
            )
        else:
            upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            new = upsert(job_stats).values(**values)
            statement = new.on_conflict_do_update(
                index_elements=["minute", "queue", "process_id"],
                set_={kind: job_stats.c[kind] + new.excluded[kind] for kind in STAT_KINDS},
            )
        connection.execute(statement)


STAT_KINDS = ("succeeded", "retried", "failed", "discarded")


# -- concurrency limits ----------------------------------------------------------------------


def acquire_slot(connection: Connection, key: str, limit: int) -> bool:
    """Take one of ``limit`` slots of ``key``; False means the job must wait as blocked."""
    dialect = connection.dialect.name
    row = {"key": key, "max_running": limit, "held": 0}
    if dialect in ("mysql", "mariadb"):
        connection.execute(insert(job_semaphores).prefix_with("IGNORE").values(**row))
    else:
        upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        connection.execute(
            upsert(job_semaphores).values(**row).on_conflict_do_nothing(index_elements=["key"])
        )
    result = connection.execute(
        update(job_semaphores)
        .where(job_semaphores.c.key == key, job_semaphores.c.held < limit)
        .values(held=job_semaphores.c.held + 1, max_running=limit)
    )
    return bool(result.rowcount == 1)


def release_slots(connection: Connection, keys: Iterable[str]) -> list[str]:
    """Give back one slot per entry of ``keys`` (a job of that key ended), in the caller's
    transaction: the slot passes to the oldest blocked job of the key, which becomes pending,
    or is freed. Keys are taken in sorted order so concurrent releasers never deadlock.
    Returns the ids of the promoted jobs."""
    promoted: list[str] = []
    locking = connection.dialect.name != "sqlite"
    for key in sorted(keys):
        query = select(job_semaphores.c.held, job_semaphores.c.max_running).where(
            job_semaphores.c.key == key
        )
        semaphore = connection.execute(query.with_for_update() if locking else query).first()
        if semaphore is None:
            continue
        if semaphore.held <= semaphore.max_running:
            oldest = (
                select(job_queue.c.id)
                .where(job_queue.c.concurrency_key == key, job_queue.c.status == BLOCKED)
                .order_by(job_queue.c.id)
                .limit(1)
            )
            job_id = connection.execute(
                oldest.with_for_update(skip_locked=True) if locking else oldest
            ).scalar()
            if job_id is not None:
                connection.execute(
                    update(job_queue)
                    .where(job_queue.c.id == job_id, job_queue.c.status == BLOCKED)
                    .values(status=PENDING)
                )
                promoted.append(job_id)
                continue
        connection.execute(
            update(job_semaphores)
            .where(job_semaphores.c.key == key, job_semaphores.c.held > 0)
            .values(held=job_semaphores.c.held - 1)
        )
    return promoted
