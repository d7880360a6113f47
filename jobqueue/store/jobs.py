"""Writing and reading job rows: insert (plain, unique, with a concurrency slot), fetch,
count, and the PostgreSQL wake-up. Each function runs on the caller's ``Connection`` and
transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    func,
    select,
)

from jobqueue.error_record import ErrorRecord
from jobqueue.schema import BLOCKED, CANCELLED, PENDING, job_queue
from jobqueue.serialization import decode_arguments
from jobqueue.store.bounds import make_room
from jobqueue.store.bulk import (
    PLAIN_INSERT,
    QUEUE,
    SCHEDULED_FOR,
    driver_parameters,
    execute_plain,
    insert_plain,
    insert_values,
    is_plain,
    row_values,
)
from jobqueue.store.depends_on import (
    Needs,
    prepare_dependents,
)
from jobqueue.store.dialect import (
    NOTIFY_CHANNEL,
    notify_enqueued,
)
from jobqueue.store.due import row_waiting_status
from jobqueue.store.membership import settle_written
from jobqueue.store.semaphores import ensure_semaphore
from jobqueue.store.unique import insert_debounced, insert_unique


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
    #: The attempt whose start the worker recorded (rescues count only attempts that started).
    started_attempt: int | None = None
    #: The enqueuing code's trace context (OpenTelemetry), continued by each attempt.
    trace_context: str | None = None
    #: The batch the job is a member of, or whose callback it is (see jobqueue.batches).
    batch_id: str | None = None
    callback_of: str | None = None
    #: While waiting: how many of its dependencies have not finished.
    open_dependencies: int | None = None
    has_dependents: bool | None = None
    #: Not started by then, it ends ``expired``.
    expires_at: datetime | None = None
    #: The key whose windows limit its starts, and what a start costs (None: 1).
    rate_key: str | None = None
    rate_cost: int | None = None
    rate_limits: str | None = None

    @property
    def args(self) -> list[Any]:
        return decode_arguments(self.args_json)[0]

    @property
    def kwargs(self) -> dict[str, Any]:
        return decode_arguments(self.args_json)[1]

    @property
    def error(self) -> ErrorRecord | None:
        """The last failed attempt's error, or None."""
        return ErrorRecord.parse(self.last_error) if self.last_error else None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        values = dict(row)
        values["args_json"] = values.pop("args")
        return cls(**values)


def insert_jobs(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert job rows: one write per set of columns (the flow-control columns are only in the
    rows that set them, a dependent's row has open_dependencies, a batch's batch_id). Plain
    rows take the batch enqueue's fast path (:mod:`~jobqueue.store.bulk`), the others one
    ``executemany``."""
    if not rows:
        return
    columns = rows[0].keys()
    if all(row.keys() == columns for row in rows):
        groups: Iterable[Sequence[Mapping[str, Any]]] = [rows]
    else:
        grouped: dict[frozenset[str], list[Mapping[str, Any]]] = {}
        for row in rows:
            grouped.setdefault(frozenset(row), []).append(row)
        groups = grouped.values()
    for group in groups:
        if len(group) > 1 and is_plain(group[0].keys()):
            insert_plain(connection, group)
        else:
            connection.execute(job_queue.insert(), list(group))


def insert_plain_jobs(connection: Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert plain jobs given as value tuples (:func:`~jobqueue.store.bulk.insert_values`),
    and wake listening workers for the queues of those already due: the batch enqueue's path
    for calls with nothing to look up or wait for (no key, bound, dependency or batch)."""
    insert_values(connection, values)
    if connection.dialect.name == "postgresql":
        now = datetime.now(UTC)
        notify_enqueued(connection, {v[QUEUE] for v in values if v[SCHEDULED_FOR] <= now})


def insert_alone(connection: Connection, row: Mapping[str, Any], *, wake: bool) -> None:
    """Insert one job with the statement of :func:`insert_alone_statement` (a plain job: its
    row has exactly :data:`~jobqueue.store.bulk.ENQUEUE_COLUMNS`), sent as driver SQL
    (:func:`execute_plain`: a web request's enqueue pays for SQLAlchemy's compiled-statement
    cache and parameter processing otherwise)."""
    statement = insert_alone_statement(connection.dialect.name, wake=wake)
    execute_plain(connection, statement, [row_values(row)])


def insert_alone_on_cursor(
    cursor: Any, dialect: Dialect, row: Mapping[str, Any], *, wake: bool
) -> None:
    """:func:`insert_alone` on a driver cursor (from
    :func:`jobqueue.driver.self_committing_cursor`) of a ``dialect`` connection."""
    statement = insert_alone_statement(dialect.name, wake=wake)
    sql, params = driver_parameters(dialect, statement, [row_values(row)])
    cursor.execute(sql, params[0])


def insert_alone_statement(dialect: str, *, wake: bool) -> Any:
    """One job's INSERT as a statement that is a whole transaction on its own.

    On PostgreSQL a due job's NOTIFY rides in the same statement (a data-modifying CTE runs
    whether or not the query reads it), so a single enqueue is one round trip.
    """
    key = (dialect, wake)
    statement = _insert_alone.get(key)
    if statement is None:
        statement = PLAIN_INSERT
        if dialect == "postgresql" and wake:
            inserted = statement.returning(job_queue.c.queue).cte("inserted")
            statement = select(func.pg_notify(NOTIFY_CHANNEL, inserted.c.queue))
        _insert_alone[key] = statement
    return statement


_insert_alone: dict[tuple[str, bool], Any] = {}


#: Columns a row has only when they are set (a plain job's INSERT binds none of them).
FLOW_COLUMNS = frozenset({"expires_at", "rate_key", "rate_cost", "rate_limits"})


def job_exists(connection: Connection, job_id: str) -> bool:
    return (
        connection.execute(select(job_queue.c.id).where(job_queue.c.id == job_id)).first()
        is not None
    )


def insert_rows(
    connection: Connection,
    rows: list[dict[str, Any]],
    limits: list[int | None],
    needs: Sequence[Needs | None] | None = None,
    bounds: Mapping[str, int] | None = None,
    debounced: Collection[int] = (),
) -> dict[int, str]:
    """Insert job rows in the caller's transaction; returns {row index: id of the queued job}
    for unique rows whose key was taken, which are not inserted (a ``debounced`` row, by
    index, hands its arguments and start to that job: :mod:`~jobqueue.store.unique`).

    ``bounds`` (queue -> max_pending): past a bound, QueueFullError before anything is
    written (:mod:`~jobqueue.store.bounds`). A row with a concurrency or a rate key waits as
    blocked until the claim lets it start (:mod:`~jobqueue.store.gate`); one with ``needs``
    waits for them, or is cancelled at once if one already failed
    (:func:`~jobqueue.store.depends_on.prepare_dependents`). Rows in a batch are counted
    into it, and those cancelled here end in it at once."""
    if bounds:
        make_room(connection, rows, bounds)
    now = datetime.now(UTC)
    for row in rows:  # a retried transaction sees the rows as the last try left them
        if row["status"] == BLOCKED:
            row["status"] = PENDING
    edges = prepare_dependents(connection, rows, needs, now) if needs and any(needs) else []
    _wait_for_keys(connection, rows, limits)
    # Rows that go one by one: a unique key, or cancelled at enqueue (a row with two more
    # columns). The rest go in an executemany.
    special = [
        index for index, row in enumerate(rows) if row["unique_key"] or row["status"] == CANCELLED
    ]
    _insert_plain(connection, rows, special)
    existing = _insert_special(connection, rows, special, debounced)
    inserted = [row for index, row in enumerate(rows) if index not in existing]
    if edges or special or any("batch_id" in row for row in rows):
        settle_written(connection, inserted, edges, existing, rows, now)
    if connection.dialect.name == "postgresql":
        due = (
            r["queue"]
            for r in inserted
            if r["status"] in (PENDING, BLOCKED) and r["scheduled_for"] <= now
        )
        notify_enqueued(connection, set(due))
    return existing


def _wait_for_keys(
    connection: Connection, rows: list[dict[str, Any]], limits: list[int | None]
) -> None:
    """Rows with a concurrency or a rate key wait as blocked (the claim starts them when their
    key has room); each concurrency key's row is made or updated once."""
    for row in rows:
        if row["status"] == PENDING:
            row["status"] = row_waiting_status(row)
    concurrency = {
        row["concurrency_key"]: limit
        for row, limit in zip(rows, limits, strict=True)
        if row["concurrency_key"] is not None and limit is not None
    }
    for key, limit in sorted(concurrency.items()):
        ensure_semaphore(connection, key, limit)


def _insert_plain(connection: Connection, rows: list[dict[str, Any]], special: list[int]) -> None:
    """The rows that are not ``special``, one write per set of columns (:func:`insert_jobs`)."""
    skipped = set(special)
    insert_jobs(connection, [row for index, row in enumerate(rows) if index not in skipped])


def _insert_special(
    connection: Connection,
    rows: list[dict[str, Any]],
    special: list[int],
    debounced: Collection[int],
) -> dict[int, str]:
    """Insert, one by one, the rows with a unique key or cancelled at enqueue; returns {row
    index: id of the queued twin} for unique rows whose key was taken."""
    existing: dict[int, str] = {}
    for index in special:
        row = rows[index]
        if row["unique_key"] is None:
            insert_jobs(connection, [row])
            continue
        found = (
            insert_debounced(connection, row)
            if index in debounced
            else insert_unique(connection, row)
        )
        if found is not None:
            existing[index] = found
    return existing


def fetch_job(connection: Connection, job_id: str) -> JobRecord | None:
    row = connection.execute(select(job_queue).where(job_queue.c.id == job_id)).mappings().first()
    return JobRecord.from_row(row) if row is not None else None


def count_jobs(
    connection: Connection, *, status: str | None = None, queue: str | None = None
) -> int:
    query = select(func.count()).select_from(job_queue)
    if status is not None:
        query = query.where(job_queue.c.status == status)
    if queue is not None:
        query = query.where(job_queue.c.queue == queue)
    return int(connection.execute(query).scalar_one())
