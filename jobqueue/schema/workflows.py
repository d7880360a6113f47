"""The workflow tables: batches and dependencies (see :mod:`jobqueue.batches`).

A batch is counters, not a scan: each member's outcome moves one count in the transaction that
records it, and the transaction that takes ``unfinished`` to 0 enqueues the callbacks. A
dependency is an edge; the dependent's ``open_dependencies`` (on ``job_queue``) counts the
edges still unfinished.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, text

from jobqueue.schema.base import MYSQL_TABLE, LongText, UTCDateTime, metadata, ulid_type, where_set

_ZERO = text("0")

job_batches = Table(
    "job_batches",
    metadata,
    Column("id", ulid_type(), primary_key=True),
    # The batch this one is a member of (a nested batch), or NULL.
    Column("parent_id", ulid_type(), nullable=True),
    Column("description", String(255), nullable=True),
    # {"on_success"|"on_failure"|"on_complete": a job call} as JSON, or NULL.
    Column("callbacks", LongText, nullable=True),
    # Members (jobs and nested batches) ever added, and how they stand.
    Column("total", Integer, nullable=False, server_default=_ZERO),
    Column("unfinished", Integer, nullable=False, server_default=_ZERO),
    Column("succeeded", Integer, nullable=False, server_default=_ZERO),
    Column("failed", Integer, nullable=False, server_default=_ZERO),
    Column("cancelled", Integer, nullable=False, server_default=_ZERO),
    # Set when the last member finished: the callbacks enqueued then (JSON list of job ids),
    # how many of them are unfinished, and how many did not succeed.
    Column("callback_ids", Text, nullable=True),
    Column("callbacks_unfinished", Integer, nullable=True),
    Column("callbacks_failed", Integer, nullable=False, server_default=_ZERO),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("members_done_at", UTCDateTime(), nullable=True),
    # Finished: every member and every callback has finished.
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    Index("ix_job_batches_parent", "parent_id", **where_set("parent_id")),
    Index("ix_job_batches_finished", "finished_at", **where_set("finished_at")),
    **MYSQL_TABLE,
)

# ``dependent_id`` runs after ``dependency_id`` (a job or a batch) has finished.
job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("dependency_id", ulid_type(), primary_key=True),
    Column("dependent_id", ulid_type(), primary_key=True),
    # The dependent's on_dependency_failure: "run" (true) or "cancel" (false).
    Column("run_on_failure", Boolean, nullable=False),
    # Whether the dependent still awaits this dependency's end (counted in its
    # open_dependencies): false once it ended, or if it had ended when the edge was written.
    # An end settles only awaited edges, so a dependency retried by an operator cannot
    # count twice.
    Column("awaited", Boolean, nullable=False),
    Index("ix_job_dependencies_dependent", "dependent_id"),
    **MYSQL_TABLE,
)
