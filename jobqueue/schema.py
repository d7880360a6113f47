"""The tables, as SQLAlchemy Core metadata: the single source the alembic migrations are made from.

``job_queue.status`` is a contract operators query, so it is a short string with a CHECK
constraint rather than a native ENUM (which MySQL and PostgreSQL alter differently).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

if TYPE_CHECKING:
    from sqlalchemy.sql.type_api import _BindProcessorType

from jobqueue.errors import NaiveDatetimeError

#: The status values, in the order a job usually passes through them.
PENDING = "pending"
BLOCKED = "blocked"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (PENDING, BLOCKED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL_STATUSES = (SUCCEEDED, FAILED, CANCELLED)

#: The alembic revision this code expects; a test checks it is the head of alembic/versions.
SCHEMA_REVISION = "0010"
VERSION_TABLE = "jobqueue_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
#: Every table on MySQL/MariaDB: InnoDB (row locks, SKIP LOCKED), binary collation (exact ids).
MYSQL_TABLE: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, and refuses naive datetimes on the way in.

    One type for every timestamp means no backend's idea of time zones leaks in: MySQL gets
    ``DATETIME(6)`` (plain DATETIME truncates to whole seconds), SQLite the ISO text SQLAlchemy
    writes (which sorts correctly), PostgreSQL ``timestamp without time zone``.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"{value!r} has no timezone; pass an aware datetime such as "
                "datetime.now(UTC) so the instant is unambiguous"
            )
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> _BindProcessorType[datetime] | None:
        """The usual conversion, remembering the last value it converted.

        A batch enqueue binds the same ``now`` object as ``created_at`` and ``scheduled_for`` of
        every row; converting it once instead of 2,000 times per 1,000 jobs was a sixth of
        ``enqueue_many``'s time on SQLite. The cache is one immutable pair, replaced whole, so
        threads sharing the processor at worst convert again.
        """
        convert = super().bind_processor(dialect)
        if convert is None:  # pragma: no cover - every dialect here converts datetimes
            return None
        last: list[tuple[Any, Any]] = [(None, None)]

        def process(value: datetime | None) -> Any:
            seen, converted = last[0]
            if value is seen and value is not None:
                return converted
            converted = convert(value)
            last[0] = (value, converted)
            return converted

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# Long text: TEXT on PostgreSQL and SQLite, LONGTEXT on MySQL (whose TEXT stops at 64 KiB).
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

# MySQL: InnoDB, full UTF-8, and binary collation so queue names and keys compare exactly.


def _where_set(column: str) -> dict[str, Any]:
    """Index only the rows where ``column`` is set, on the backends that can."""
    where = text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


job_queue = Table(
    "job_queue",
    metadata,
    # ULIDs are time-ordered, so inserts append to the primary-key index.
    Column("id", String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("args", LongText, nullable=False),
    Column("queue", String(100), nullable=False, server_default="default"),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("status", String(16), nullable=False, server_default=PENDING),
    Column("scheduled_for", UTCDateTime(), nullable=False),
    # Claims so far, never reset: with claimed_by, the fencing token of every final write.
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("failed_attempts", Integer, nullable=False, server_default=text("0")),
    # The attempt whose job body is known to have started (written by the worker, batched,
    # once the attempt has run a while): a rescue counts only an attempt that started.
    Column("started_attempt", Integer, nullable=True),
    Column("max_attempts", Integer, nullable=False, server_default=text("25")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("claimed_by", String(26), nullable=True),
    Column("last_error", LongText, nullable=True),
    # sha256 hex of the unique key; set to NULL when the job ends (MySQL has no partial indexes).
    Column("unique_key", String(64), nullable=True),
    Column("concurrency_key", String(255), nullable=True),
    Column("result", LongText, nullable=True),
    # The enqueuing code's OpenTelemetry context (W3C traceparent as JSON), or NULL.
    Column("trace_context", String(512), nullable=True),
    CheckConstraint("status IN ({})".format(", ".join(f"'{s}'" for s in STATUSES)), name="status"),
    CheckConstraint("priority BETWEEN -1000000 AND 1000000", name="priority"),
    # Claim from named queues: equality on queue and status, then the ORDER BY columns.
    Index("ix_job_queue_claim", "queue", "status", "priority", "scheduled_for", "id"),
    # Claim from every queue ("*").
    Index("ix_job_queue_claim_all", "status", "priority", "scheduled_for", "id"),
    # "When is the next job due?" as an index range, never walking future or backing-off rows
    # (which the claim indexes, ordered by priority first, would have to step over).
    Index("ix_job_queue_due", "status", "scheduled_for"),
    # Status first: also the per-queue counts of unfinished jobs, read from the index alone.
    Index("ix_job_queue_due_by_queue", "status", "queue", "scheduled_for"),
    # Rescue of a dead process's jobs; pruning of finished jobs by age.
    # Columns that are NULL on most rows are indexed only where set (PostgreSQL and SQLite;
    # MySQL has no partial indexes): an enqueue then writes six index entries, not nine.
    Index("ix_job_queue_claimed_by", "claimed_by", **_where_set("claimed_by")),
    # Pruning asks only for finished jobs: pending ones stay out (no entry per enqueue).
    Index("ix_job_queue_finished", "status", "finished_at", **_where_set("finished_at")),
    # Operators' listings of finished jobs (the bulk of the table): one status and queue,
    # newest first, read as one index range. Unfinished rows stay out, so enqueues and claims
    # do not pay for it.
    Index("ix_job_queue_status_queue", "status", "queue", "id", **_where_set("finished_at")),
    Index("ix_job_queue_unique_key", "unique_key", unique=True, **_where_set("unique_key")),
    # Promotion of the oldest blocked job of a concurrency key.
    Index(
        "ix_job_queue_concurrency",
        "concurrency_key",
        "status",
        "id",
        **_where_set("concurrency_key"),
    ),
    **MYSQL_TABLE,
)

job_processes = Table(
    "job_processes",
    metadata,
    # A fresh ULID each time a process starts, so a restarted pid is never mistaken for the old one.
    Column("id", String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("supervisor_id", String(26), nullable=True),
    Column("queues", Text, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("last_heartbeat_at", UTCDateTime(), nullable=False),
    Index("ix_job_processes_heartbeat", "last_heartbeat_at"),
    Index("ix_job_processes_supervisor", "supervisor_id"),
    **MYSQL_TABLE,
)

# Queues an operator paused: workers claim nothing from them; enqueue still works.
job_queue_pauses = Table(
    "job_queue_pauses",
    metadata,
    Column("queue", String(100), primary_key=True),
    Column("paused_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE,
)

# Outcome counters per minute, queue and process, updated in the transaction that records the
# outcomes, so throughput and failure figures survive pruning and never go down. Sharded by
# process so concurrent workers never wait on one another's counter row.
job_stats = Table(
    "job_stats",
    metadata,
    Column("minute", UTCDateTime(), primary_key=True),
    Column("queue", String(100), primary_key=True),
    Column("process_id", String(26), primary_key=True),
    Column("succeeded", Integer, nullable=False, server_default=text("0")),
    Column("retried", Integer, nullable=False, server_default=text("0")),
    Column("failed", Integer, nullable=False, server_default=text("0")),
    Column("discarded", Integer, nullable=False, server_default=text("0")),
    **MYSQL_TABLE,
)

# Cooperative cancellation of running jobs: the worker tells the job, which may stop early.
job_cancellations = Table(
    "job_cancellations",
    metadata,
    Column("job_id", String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), primary_key=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE,
)

# Concurrency limits: ``held`` slots of ``max_running`` for each key. A job holds a slot from the
# moment it is pending (enqueued or promoted) until it ends; without one it waits as blocked.
job_semaphores = Table(
    "job_semaphores",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("max_running", Integer, nullable=False),
    Column("held", Integer, nullable=False, server_default=text("0")),
    **MYSQL_TABLE,
)

# One row per fired occurrence of a recurring task: the primary key makes each occurrence
# enqueue exactly once however many supervisors run the scheduler.
job_recurring_runs = Table(
    "job_recurring_runs",
    metadata,
    Column("task", String(255), primary_key=True),
    Column("fire_at", UTCDateTime(), primary_key=True),
    Column("job_id", String(26), nullable=True),  # NULL: a baseline, seen but not run
    **MYSQL_TABLE,
)

# Durable steps (jobqueue.steps): a job's completed steps, keyed by name, so a later attempt
# returns their recorded values instead of running them again. ``done`` is false while an
# ``iterate`` is under way (``value`` then holds its cursor). Deleted with their job.
job_steps = Table(
    "job_steps",
    metadata,
    Column("job_id", String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("value", LongText, nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE,
)

# The attempt history (jobqueue.store.history): each counted failed attempt's error and process.
job_errors = Table(
    "job_errors",
    metadata,
    Column("job_id", String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("process_id", String(26), nullable=False),
    Column("error", LongText, nullable=False),
    Column("failed_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE,
)
