"""The :class:`JobQueue`: one database, its engine, and the operations producers use.

An app usually has one, created lazily from the configuration the first time a job is
enqueued; tests and multi-database apps create their own. Nothing connects at import time.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from ulid import ULID

from jobqueue import semaphores, store
from jobqueue.config import resolve_database_url
from jobqueue.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    READ_ONLY,
    SqliteSynchronous,
    autocommit_options,
    check_server_version,
    create_engine,
    is_deadlock,
    is_disconnect,
    mask_url,
    operational_error,
    unavailable,
)
from jobqueue.enqueue import EnqueuedJob, JobCall
from jobqueue.errors import DatabaseUnavailableError, SchemaError
from jobqueue.schema import BLOCKED, PENDING, SCHEMA_REVISION
from jobqueue.serialization import DEFAULT_MAX_PAYLOAD_BYTES, encode_arguments

# Engines whose schema revision was checked: the check runs once per engine, not per enqueue.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from jobqueue.admin import Admin

_verified_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_verify_lock = threading.Lock()


class JobQueue:
    """A job database: where jobs are enqueued and from which workers claim them."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        sqlite_synchronous: SqliteSynchronous = "NORMAL",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_size: int | None = None,
    ) -> None:
        """``database_url`` defaults to the resolved configuration (see :mod:`jobqueue.config`);
        ``engine`` lets you hand over one you built (for SQLite, call
        :func:`jobqueue.configure_sqlite` on it)."""
        if engine is not None and database_url is not None:
            raise ValueError("pass database_url= or engine=, not both")
        self.database_url = (
            engine.url.render_as_string(hide_password=False)
            if engine is not None
            else resolve_database_url(database_url)
        )
        self.max_payload_bytes = max_payload_bytes
        self._engine = engine
        self._engine_options: dict[str, Any] = {
            "sqlite_synchronous": sqlite_synchronous,
            "busy_timeout_ms": busy_timeout_ms,
            "pool_size": pool_size,
        }
        self._engine_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JobQueue({mask_url(self.database_url)!r})"

    @property
    def engine(self) -> Engine:
        """The engine, created on first use."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = create_engine(self.database_url, **self._engine_options)
        return self._engine

    @property
    def admin(self) -> Admin:
        """Operator actions: list, retry, cancel, discard, pause, prune, stats."""
        from jobqueue.admin import Admin

        return Admin(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection; the queue can still be used afterwards."""
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[Connection]:
        """A connection from the pool; a failure to connect becomes DatabaseUnavailableError."""
        engine = self.engine
        try:
            connection = engine.connect()
        except DBAPIError as error:
            raise unavailable(engine, error) from error
        try:
            if read_only:
                connection = connection.execution_options(**READ_ONLY)
            yield connection
        finally:
            connection.close()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Connection]:
        """A connection inside a transaction that commits when the block ends without error."""
        with self.connect(read_only=read_only) as connection, connection.begin():
            yield connection

    def verify_schema(self, connection: Connection | None = None) -> None:
        """Raise :class:`SchemaError` unless the tables exist at the revision this code expects.

        Checked once per engine, so the cost is not paid on every enqueue. With a caller's
        ``connection`` the check runs there inside a SAVEPOINT (a missing table must not abort
        the caller's PostgreSQL transaction, and a second pooled connection must not be needed).
        """
        engine = connection.engine if connection is not None else self.engine
        if engine in _verified_engines:
            return
        with _verify_lock:
            if engine in _verified_engines:
                return
            try:
                if connection is not None:
                    check_server_version(engine)
                    with connection.begin_nested():
                        revision = store.read_schema_revision(connection)
                else:
                    with self.connect(read_only=True) as own, own.begin():
                        check_server_version(engine)
                        revision = store.read_schema_revision(own)
            except DBAPIError as error:
                raise unavailable(engine, error) from error
            where = mask_url(engine.url)
            if revision is None:
                raise SchemaError(
                    f"the jobqueue tables do not exist in {where}; "
                    f"run `jobrunner migrate --database-url {where}` first"
                )
            if revision != SCHEMA_REVISION:
                raise SchemaError(
                    f"the jobqueue schema in {where} is at revision {revision}, but this version "
                    f"of jobqueue needs {SCHEMA_REVISION}: run `jobrunner migrate` (or upgrade "
                    "jobqueue if the database is newer)"
                )
            _verified_engines.add(engine)

    # -- enqueue -----------------------------------------------------------------------------

    def enqueue(self, job: Any, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Enqueue ``job`` (a ``@job`` function, a ``Job`` subclass or a registered name)."""
        from jobqueue.jobs import enqueuer_for

        return enqueuer_for(job).using(jobqueue=self).enqueue(*args, **kwargs)

    def enqueue_many(
        self,
        calls: Sequence[JobCall],
        *,
        connection: Connection | None = None,
        session: Session | None = None,
    ) -> list[EnqueuedJob]:
        """Write every call in one transaction: all of them, or (on error) none.

        With ``connection=`` or ``session=`` the rows join the caller's transaction and become
        visible to workers when the caller commits.
        """
        if connection is not None and session is not None:
            raise ValueError("pass connection= or session=, not both")
        if isinstance(calls, JobCall):
            raise TypeError("enqueue_many() takes a list of JobCall, not a single JobCall")
        calls = list(calls)
        rows, handles = self._rows(calls)
        limits = [call.concurrency_limit for call in calls]
        if inline_mode.get():
            from jobqueue.testing import run_inline

            run_inline(rows)
            return handles
        if session is not None:
            connection = session.connection()
        if connection is not None:
            self.verify_schema(connection)
            existing = self._insert(connection, rows, limits)
        else:
            self.verify_schema()
            alone = len(rows) == 1 and rows[0]["unique_key"] is None and limits[0] is None
            if alone and self._insert_alone(rows[0]):
                existing = {}
            else:
                existing = self._insert_own_transaction(rows, limits)
        for index, job_id in existing.items():
            handles[index] = replace(handles[index], id=job_id, existing=True)
        # No per-job log line here: enqueue runs in the caller's process, whose logging is the
        # caller's; an unconfigured structlog would print every job at DEBUG.
        return handles

    def _rows(self, calls: list[JobCall]) -> tuple[list[dict[str, Any]], list[EnqueuedJob]]:
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        handles: list[EnqueuedJob] = []
        for call in calls:
            if not isinstance(call, JobCall):
                raise TypeError(
                    f"enqueue_many() takes JobCall items (my_job.call(...)), not {call!r}"
                )
            job_id = str(ULID())
            scheduled_for = call.scheduled_for or now
            rows.append(
                {
                    "id": job_id,
                    "name": call.name,
                    "args": encode_arguments(
                        call.args, call.kwargs, max_bytes=self.max_payload_bytes
                    ),
                    "queue": call.queue,
                    "priority": call.priority,
                    "status": PENDING,
                    "scheduled_for": scheduled_for,
                    "attempts": 0,
                    "failed_attempts": 0,
                    "max_attempts": call.max_attempts,
                    "created_at": now,
                    "concurrency_key": call.concurrency_key,
                    "unique_key": (
                        hashlib.sha256(call.unique_key.encode()).hexdigest()
                        if call.unique_key is not None
                        else None
                    ),
                }
            )
            handles.append(EnqueuedJob(job_id, call.name, call.queue, scheduled_for, self))
        return rows, handles

    def _insert_alone(self, row: dict[str, Any]) -> bool:
        """Write one plain job as one self-committing statement; False where the backend has
        no cheaper way than a transaction (see :func:`jobqueue.db.autocommit_options`).

        When the connection is lost mid-statement, whether it committed is unknown; but the
        job's id was made here, so a look tells: there, it was written; not there, it was not,
        and is sent again. Written once or an error, as in a transaction.
        """
        options = autocommit_options(self.dialect)
        if options is None:
            return False
        wake = row["scheduled_for"] <= datetime.now(UTC)
        statement = store.insert_alone_statement(self.dialect, wake=wake)
        for attempt in (1, 2, 3):
            with self.connect() as pooled:
                connection = pooled.execution_options(**options)
                try:
                    with connection.begin():
                        connection.execute(statement, row)
                    return True
                except DBAPIError as error:
                    lost = is_disconnect(error)
                    if attempt == 3 or not (lost or is_deadlock(error)):
                        raise operational_error(self.engine, error) from error
            if lost and self._written(row["id"]):
                return True
        raise AssertionError("unreachable")  # pragma: no cover

    def _written(self, job_id: str) -> bool:
        try:
            with self.transaction(read_only=True) as connection:
                return store.job_exists(connection, job_id)
        except DBAPIError as error:
            raise DatabaseUnavailableError(
                f"the connection to {mask_url(self.engine.url)} was lost while job {job_id} was "
                f"being written, and it cannot be read back ({str(error.orig).strip()}); "
                "whether it was written is unknown"
            ) from error

    def _insert_own_transaction(
        self, rows: list[dict[str, Any]], limits: list[int | None]
    ) -> dict[int, str]:
        """Insert in a transaction of our own, retrying once on a connection lost before the
        commit was sent (a pooled connection the server closed): the jobs are written once or an
        error says so, never silently dropped. A deadlock victim is retried the same way."""
        for attempt in (1, 2, 3):
            with self.connect() as connection:
                try:
                    transaction = connection.begin()
                    existing = self._insert(connection, rows, limits)
                except DBAPIError as error:
                    if attempt < 3 and (is_disconnect(error) or is_deadlock(error)):
                        continue
                    raise operational_error(self.engine, error) from error
                try:
                    transaction.commit()
                except DBAPIError as error:
                    raise DatabaseUnavailableError(
                        f"the commit of {len(rows)} job(s) to {mask_url(self.engine.url)} failed "
                        f"({str(error.orig).strip()}); whether they were written is unknown"
                    ) from error
                return existing
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert(
        self, connection: Connection, rows: list[dict[str, Any]], limits: list[int | None]
    ) -> dict[int, str]:
        """Insert the rows; returns {row index: id of the queued job} for unique rows whose
        key was taken, which are not inserted. A row with a concurrency limit takes a slot
        (pending) or waits without one (blocked)."""
        plain = [
            row for row in rows if row["unique_key"] is None and row["concurrency_key"] is None
        ]
        store.insert_jobs(connection, plain)
        existing: dict[int, str] = {}
        for index, row in enumerate(rows):
            key, limit = row["concurrency_key"], limits[index]
            if row["unique_key"] is None and key is None:
                continue
            if key is not None and limit is not None:
                row["status"] = (
                    PENDING if semaphores.acquire_slot(connection, key, limit) else BLOCKED
                )
            if row["unique_key"] is None:
                store.insert_jobs(connection, [row])
                continue
            found = store.insert_unique(connection, row)
            if found is not None:
                existing[index] = found
                if key is not None and row["status"] == PENDING:
                    semaphores.release_slots(connection, [key])  # the queued twin keeps its own
        if connection.dialect.name == "postgresql":
            now = datetime.now(UTC)
            store.notify_enqueued(
                connection, {r["queue"] for r in rows if r["scheduled_for"] <= now}
            )
        return existing

    # -- reading -----------------------------------------------------------------------------

    def get_job(self, job_id: str) -> store.JobRecord | None:
        with self.transaction(read_only=True) as connection:
            return store.fetch_job(connection, job_id)

    def count_jobs(self, *, status: str | None = None, queue: str | None = None) -> int:
        with self.transaction(read_only=True) as connection:
            return store.count_jobs(connection, status=status, queue=queue)


#: Set by :func:`jobqueue.testing.inline`: enqueue runs the job at once, in-process.
inline_mode: ContextVar[bool] = ContextVar("jobqueue_inline", default=False)

_default: JobQueue | None = None
_default_lock = threading.Lock()


def get_default_queue() -> JobQueue:
    """The process's default :class:`JobQueue`, created from the configuration on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = JobQueue()
    return _default


def set_default_queue(jobqueue: JobQueue | None) -> None:
    """Make ``jobqueue`` the default (``None`` forgets it; the next use resolves it again)."""
    global _default
    with _default_lock:
        _default = jobqueue


def configure(database_url: str | None = None, **options: Any) -> JobQueue:
    """Create a :class:`JobQueue` with these settings and make it the default."""
    jobqueue = JobQueue(database_url, **options)
    set_default_queue(jobqueue)
    return jobqueue
