"""The tables, as SQLAlchemy Core metadata: the single source the alembic migrations are made from.

``job_queue.status`` is a contract operators query, so it is a short string with a CHECK
constraint rather than a native ENUM (which MySQL and PostgreSQL alter differently). The
shared parts (statuses, metadata, column types) are in :mod:`jobqueue.schema.base`; the
workflow tables (batches, dependencies) in :mod:`jobqueue.schema.workflows`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from jobqueue.schema.base import (
    BLOCKED,
    CANCELLED,
    EXPIRED,
    FAILED,
    MYSQL_TABLE,
    NAMING_CONVENTION,
    PENDING,
    RUNNING,
    SCHEMA_REVISION,
    STATUSES,
    SUCCEEDED,
    TERMINAL_STATUSES,
    VERSION_TABLE,
    WAITING,
    LongText,
    UTCDateTime,
    metadata,
    ulid_type,
    where_set,
)

job_queue = Table(
    "job_queue",
    metadata,
    # ULIDs are time-ordered, so inserts append to the primary-key index.
    Column("id", ulid_type(), primary_key=True),
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
    # Workflows (jobqueue.batches): the batch the job is a member of; the batch whose
    # callback it is; while it waits, how many of its dependencies are unfinished; and
    # whether jobs depend on it (its outcome looks for them only then).
    Column("batch_id", ulid_type(), nullable=True),
    Column("callback_of", ulid_type(), nullable=True),
    Column("open_dependencies", Integer, nullable=True),
    Column("has_dependents", Boolean, nullable=True),  # NULL: none
    # Flow control (docs/flow-control.md): not started by then, the job ends ``expired``.
    Column("expires_at", UTCDateTime(), nullable=True),
    # The key whose sliding windows limit this job's starts, what a start costs (NULL: 1),
    # and the windows ("count/seconds,...", as the job was defined when it was enqueued).
    Column("rate_key", String(255), nullable=True),
    Column("rate_cost", Integer, nullable=True),
    Column("rate_limits", String(255), nullable=True),
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
    Index("ix_job_queue_claimed_by", "claimed_by", **where_set("claimed_by")),
    # Pruning asks only for finished jobs: pending ones stay out (no entry per enqueue).
    Index("ix_job_queue_finished", "status", "finished_at", **where_set("finished_at")),
    # Operators' listings of finished jobs (the bulk of the table): one status and queue,
    # newest first, read as one index range. Unfinished rows stay out, so enqueues and claims
    # do not pay for it.
    Index("ix_job_queue_status_queue", "status", "queue", "id", **where_set("finished_at")),
    Index("ix_job_queue_unique_key", "unique_key", unique=True, **where_set("unique_key")),
    # Promotion of the oldest blocked job of a concurrency key.
    Index(
        "ix_job_queue_concurrency",
        "concurrency_key",
        "status",
        "id",
        **where_set("concurrency_key"),
    ),
    # A rate key's waiting jobs, moved to when its window frees.
    Index("ix_job_queue_rate", "rate_key", "status", "scheduled_for", **where_set("rate_key")),
    # A batch's members by status (cancel, show); only rows in a batch where the dialect
    # allows, so plain enqueues do not pay for it.
    Index("ix_job_queue_batch", "batch_id", "status", **where_set("batch_id")),
    **MYSQL_TABLE,
)

job_processes = Table(
    "job_processes",
    metadata,
    # A fresh ULID each time a process starts, so a restarted pid is never mistaken for the old one.
    Column("id", ulid_type(), primary_key=True),
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

# Queues with a bound on waiting jobs (``max_pending``): an enqueue into one locks its row, so
# concurrent producers count the waiting jobs in turn and none overshoots the bound.
job_queue_bounds = Table(
    "job_queue_bounds",
    metadata,
    Column("queue", String(100), primary_key=True),
    Column("max_pending", Integer, nullable=False),
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
    Column("expired", Integer, nullable=False, server_default=text("0")),
    **MYSQL_TABLE,
)

# Cooperative cancellation of running jobs: the worker tells the job, which may stop early.
job_cancellations = Table(
    "job_cancellations",
    metadata,
    Column("job_id", ulid_type(), primary_key=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE,
)

# The gate (jobqueue.store.gate): one row per concurrency or rate key, locked by the claim that
# starts its jobs. ``held`` of ``max_running`` slots (NULL: no concurrency limit) are taken by
# running jobs; ``served_at`` is when the key last had a job started (the round-robin order
# between keys).
job_semaphores = Table(
    "job_semaphores",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("max_running", Integer, nullable=True),
    Column("held", Integer, nullable=False, server_default=text("0")),
    Column("served_at", UTCDateTime(), nullable=True),
    **MYSQL_TABLE,
)

# Each start of a rate-limited job, counted against its key's windows; rows older than the
# longest window are deleted by the claims that add new ones.
job_rate_starts = Table(
    "job_rate_starts",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("started_at", UTCDateTime(), primary_key=True),
    Column("job_id", ulid_type(), primary_key=True),
    Column("cost", Integer, nullable=False),
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
    Column("job_id", ulid_type(), primary_key=True),
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
    Column("job_id", ulid_type(), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("process_id", String(26), nullable=False),
    Column("error", LongText, nullable=False),
    Column("failed_at", UTCDateTime(), nullable=False),
    **MYSQL_TABLE,
)


from jobqueue.schema.workflows import job_batches, job_dependencies  # noqa: E402

__all__ = [
    "BLOCKED",
    "CANCELLED",
    "EXPIRED",
    "FAILED",
    "MYSQL_TABLE",
    "NAMING_CONVENTION",
    "PENDING",
    "RUNNING",
    "SCHEMA_REVISION",
    "STATUSES",
    "SUCCEEDED",
    "TERMINAL_STATUSES",
    "VERSION_TABLE",
    "WAITING",
    "LongText",
    "UTCDateTime",
    "job_batches",
    "job_cancellations",
    "job_dependencies",
    "job_errors",
    "job_processes",
    "job_queue",
    "job_queue_bounds",
    "job_queue_pauses",
    "job_rate_starts",
    "job_recurring_runs",
    "job_semaphores",
    "job_stats",
    "job_steps",
    "metadata",
]
