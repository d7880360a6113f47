"""Writing and reading job rows: insert (plain and unique), fetch, count, the schema
revision, and the PostgreSQL wake-up. Each function runs on the caller's ``Connection`` and
transaction; dialect branches live here, in the other store modules and in :mod:`jobqueue.db`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.exc import DBAPIError, ProgrammingError

from jobqueue.db import dialect_insert
from jobqueue.schema import (
    VERSION_TABLE,
    job_queue,
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


def insert_alone_statement(dialect: str, *, wake: bool) -> Any:
    """One job's INSERT as a statement that is a whole transaction on its own.

    On PostgreSQL a due job's NOTIFY rides in the same statement (a data-modifying CTE runs
    whether or not the query reads it), so a single enqueue is one round trip.
    """
    key = (dialect, wake)
    statement = _insert_alone.get(key)
    if statement is None:
        statement = insert(job_queue).values(
            {name: bindparam(name, type_=job_queue.c[name].type) for name in ENQUEUE_COLUMNS}
        )
        if dialect == "postgresql" and wake:
            inserted = statement.returning(job_queue.c.queue).cte("inserted")
            statement = select(func.pg_notify(NOTIFY_CHANNEL, inserted.c.queue))
        _insert_alone[key] = statement
    return statement


_insert_alone: dict[tuple[str, bool], Any] = {}

#: The columns an enqueue writes (the rest start NULL).
ENQUEUE_COLUMNS = (
    "id",
    "name",
    "args",
    "queue",
    "priority",
    "status",
    "scheduled_for",
    "attempts",
    "failed_attempts",
    "max_attempts",
    "created_at",
    "concurrency_key",
    "unique_key",
)


def job_exists(connection: Connection, job_id: str) -> bool:
    return (
        connection.execute(select(job_queue.c.id).where(job_queue.c.id == job_id)).first()
        is not None
    )


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
            statement = (
                dialect_insert(dialect, job_queue)
                .values(**row)
                .on_conflict_do_nothing(
                    # The unique index is partial (only set keys): the conflict target says so.
                    index_elements=["unique_key"],
                    index_where=job_queue.c.unique_key.is_not(None),
                )
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


def notify_enqueued(connection: Connection, queues: Iterable[str]) -> None:
    """PostgreSQL: wake listening workers when the enqueuing transaction commits."""
    for queue in sorted(set(queues)):
        connection.execute(select(func.pg_notify(NOTIFY_CHANNEL, queue)))


NOTIFY_CHANNEL = "jobqueue"
