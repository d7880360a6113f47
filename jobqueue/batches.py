"""Workflows, the public side: :func:`batch`, :func:`current_batch`, :class:`Batch` and
:func:`dependency_results` (``depends_on`` itself is an option of ``using()``).

A batch is a group of jobs with callbacks. It finishes when every member (jobs, jobs added
while it runs, nested batches) has finished; then, exactly once, ``on_complete`` runs, and
``on_success`` if every member succeeded or ``on_failure`` if one did not. The jobs written
inside a ``with batch(...)`` block are written together with the batch when the block ends,
in one transaction (the caller's, with ``connection=``/``session=``), so a block that raises,
or a process that dies in it, leaves nothing behind. The counting is done in the transaction
of each member's outcome (:mod:`jobqueue.store.workflow`); see docs/workflows.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from ulid import ULID

from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.context import current_database, current_job
from jobqueue.database import Database
from jobqueue.enqueue import batch_collector, enqueue_calls, inline_mode
from jobqueue.errors import ConfigurationError
from jobqueue.job_rows import queue_bounds
from jobqueue.queue import get_default_queue
from jobqueue.serialization import DEFAULT_MAX_PAYLOAD_BYTES, decode_value, encode_arguments
from jobqueue.store import batches as store
from jobqueue.store.batches import BatchRecord, CancelReport
from jobqueue.store.depends_on import Needs
from jobqueue.store.workflow import CALLBACK_KINDS, callback_spec
from jobqueue.writes import write_in_transaction

if TYPE_CHECKING:
    from jobqueue.calls import AnySession

MAX_DESCRIPTION = 255

_open_builder: ContextVar[_Builder | None] = ContextVar("jobqueue_open_batch", default=None)


class Batch:
    """A batch, by id: read it, cancel it, add jobs to it. ``depends_on=[a_batch]`` makes a
    job wait until the batch has finished (callbacks included)."""

    def __init__(self, batch_id: str, database: Database | None) -> None:
        self.id = batch_id
        self._database = database

    def __repr__(self) -> str:
        return f"Batch({self.id!r})"

    @property
    def database(self) -> Database:
        return self._database or get_default_queue()

    def fetch(self) -> BatchRecord | None:
        """The batch as stored now: status, counters, jobs per status, times (``None``
        before its block has ended, or after it was pruned)."""
        with self.database.transaction(read_only=True) as connection:
            return store.fetch_batch(connection, self.id)

    def cancel(self) -> CancelReport | None:
        """Cancel the batch and its nested batches: jobs not yet running are cancelled (and
        the jobs depending on them that said "cancel"), running ones are asked to stop
        (:func:`~jobqueue.cancel_requested`); ``on_complete`` and ``on_failure`` still run
        once, after the last member ends. ``None`` if there is no such batch."""
        with self.database.transaction() as connection:
            return store.cancel_batch(connection, self.id, datetime.now(UTC))

    def add(self, *calls: JobCall, connection: Connection | None = None) -> list[EnqueuedJob]:
        """Add jobs (``my_job.call(...)``) to the batch: inside its block, with the block;
        afterwards (from one of its jobs, say), at once, counted before the batch can
        finish. Raises :class:`~jobqueue.errors.BatchFinishedError` once every member has
        finished.

        A job that adds work and is then killed runs again and adds it again, unless the
        addition is a transactional step: ``step("children", lambda c:
        current_batch().add(*calls, connection=c), transaction=True)`` commits the jobs with
        the step's record, so they are added once."""
        builder = _open_builder.get()
        while builder is not None and builder.id != self.id:
            builder = builder.parent
        if builder is not None and connection is None:
            token = batch_collector.set(builder.collect)
            database = builder.database or get_default_queue()
            try:
                return enqueue_calls(database, list(calls), max_payload_bytes=_limit(database))
            finally:
                batch_collector.reset(token)
        database = self.database
        return enqueue_calls(
            database,
            list(calls),
            max_payload_bytes=_limit(database),
            connection=connection,
            batch_id=self.id,
        )


class _Builder:
    """The rows of an open ``with batch(...)`` block (and of the blocks nested in it)."""

    def __init__(
        self, batch_row: dict[str, Any], parent: _Builder | None, database: Database | None
    ):
        self.id: str = batch_row["id"]
        self.parent = parent
        self.database = database
        self.batch_rows = [batch_row]
        self.rows: list[dict[str, Any]] = []
        self.limits: list[int | None] = []
        self.needs: list[Needs | None] = []

    def collect(
        self,
        database: Database,
        rows: list[dict[str, Any]],
        limits: list[int | None],
        needs: list[Needs | None],
    ) -> None:
        if self.database is None:
            self.database = database
        elif not _same(self.database, database):
            raise ValueError(
                f"batch {self.id} is written to {self.database.engine.url!r}; its jobs cannot "
                f"go to {database.engine.url!r}"
            )
        for row in rows:
            row["batch_id"] = self.id
        self.rows += rows
        self.limits += limits
        self.needs += needs

    def absorb(self, child: _Builder) -> None:
        """A nested block ended: its batch and jobs are written with this one."""
        if child.database is not None:
            self.collect(child.database, [], [], [])
        self.batch_rows += child.batch_rows
        self.rows += child.rows
        self.limits += child.limits
        self.needs += child.needs


@contextmanager
def batch(
    *,
    on_success: JobCall | None = None,
    on_failure: JobCall | None = None,
    on_complete: JobCall | None = None,
    description: str | None = None,
    jobqueue: Database | None = None,
    connection: Connection | None = None,
    session: AnySession | None = None,
) -> Iterator[Batch]:
    """Group the jobs enqueued in the block into a new batch (see the module's docstring).

    Opened inside another block, or inside a job of a batch, the new batch is a member of
    that one. ``connection=``/``session=`` write it in the caller's transaction."""
    if inline_mode.get() is not None:
        raise ConfigurationError(
            "batches need a database: in tests, enqueue to a JobQueue and run the jobs with "
            "jobqueue.testing.drain() instead of inline()"
        )
    parent = _open_builder.get()
    database = jobqueue or (parent.database if parent is not None else None) or current_database()
    row = _batch_row(on_success, on_failure, on_complete, description, _limit(database))
    if parent is not None:
        row["parent_id"] = parent.id
    builder = _Builder(row, parent, database)
    handle = Batch(builder.id, database)
    builder_token = _open_builder.set(builder)
    collector_token = batch_collector.set(builder.collect)
    try:
        yield handle
    finally:
        batch_collector.reset(collector_token)
        _open_builder.reset(builder_token)
    if parent is not None:
        parent.absorb(builder)
        return
    handle._database = _write(builder, connection, session)


def _batch_row(
    on_success: JobCall | None,
    on_failure: JobCall | None,
    on_complete: JobCall | None,
    description: str | None,
    max_payload_bytes: int,
) -> dict[str, Any]:
    given = {"on_success": on_success, "on_failure": on_failure, "on_complete": on_complete}
    callbacks = {}
    for kind in CALLBACK_KINDS:
        call = given[kind]
        if call is None:
            continue
        if not isinstance(call, JobCall):
            raise TypeError(f"{kind} takes a job call (my_job.call(...)), not {call!r}")
        if call.depends_on or call.scheduled_for is not None:
            raise ValueError(
                f"{kind}: a callback runs when the batch finishes; it takes no "
                "depends_on and no schedule"
            )
        callbacks[kind] = callback_spec(
            name=call.name,
            args=encode_arguments(call.args, call.kwargs, max_bytes=max_payload_bytes),
            queue=call.queue,
            priority=call.priority,
            max_attempts=call.max_attempts,
            concurrency_key=call.concurrency_key,
            concurrency_limit=call.concurrency_limit,
        )
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise ValueError(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    return {
        "id": str(ULID()),
        "parent_id": None,
        "description": description,
        "callbacks": json.dumps(callbacks) if callbacks else None,
        "created_at": datetime.now(UTC),
    }


def _write(
    builder: _Builder, connection: Connection | None, session: AnySession | None
) -> Database:
    """Write the block's batches and jobs in one transaction; returns the database."""
    database = builder.database or get_default_queue()
    job = current_job()
    running_in = current_database()
    if job is not None and running_in is not None and _same(running_in, database):
        builder.batch_rows[0]["parent_id"] = job.batch_id  # a batch opened in a batch's job
    now = datetime.now(UTC)

    def write(c: Connection) -> dict[int, str]:
        return store.write_batches(
            c,
            builder.batch_rows,
            builder.rows,
            builder.limits,
            builder.needs,
            now,
            queue_bounds(database),
        )

    if session is not None:
        connection = session.connection()
    if connection is not None:
        database.verify_schema(connection)
        write(connection)
    else:
        database.verify_schema()
        write_in_transaction(database, write, what=f"batch {builder.id}")
    return database


def current_batch() -> Batch | None:
    """The batch being built by the innermost open ``with batch(...)`` block; else the batch
    of the job running here (for a callback, the batch it is the callback of); else None."""
    builder = _open_builder.get()
    if builder is not None:
        return Batch(builder.id, builder.database)
    job = current_job()
    batch_id = job.batch_id or job.callback_of if job is not None else None
    return Batch(batch_id, current_database()) if batch_id is not None else None


def dependency_results() -> dict[str, Any]:
    """{dependency job id: what it returned} for the job running here, from the jobs in its
    ``depends_on`` that succeeded (batches have no result)."""
    job, database = current_job(), current_database()
    if job is None or database is None:
        raise RuntimeError("dependency_results() is for the job running in a worker")
    with database.transaction(read_only=True) as connection:
        stored = store.dependency_results(connection, job.id)
    return {
        job_id: decode_value(text) if text is not None else None for job_id, text in stored.items()
    }


def _same(one: Database, other: Database) -> bool:
    return one is other or one.engine.url == other.engine.url


def _limit(database: Database | None) -> int:
    return int(getattr(database, "max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES))
