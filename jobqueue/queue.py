"""The :class:`JobQueue`: one database and the operations producers and operators use.

An app usually has one, created lazily from the configuration the first time a job is
enqueued; tests and multi-database apps create their own. Nothing connects at import time.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from jobqueue.admin import Admin
from jobqueue.call_builder import build_call, target_options
from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.database import Database
from jobqueue.db import DEFAULT_BUSY_TIMEOUT_MS, SqliteSynchronous
from jobqueue.enqueue import enqueue_calls
from jobqueue.options import positive_seconds
from jobqueue.queue_config import queue_configs
from jobqueue.serialization import DEFAULT_MAX_PAYLOAD_BYTES
from jobqueue.store import due
from jobqueue.store import jobs as store
from jobqueue.store.due import DueJob
from jobqueue.store.jobs import JobRecord

if TYPE_CHECKING:
    from jobqueue.calls import AnySession


class JobQueue(Database):
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
        queues: Mapping[str, Mapping[str, Any]] | None = None,
        prepared_statements: bool = False,
    ) -> None:
        """``database_url`` defaults to the resolved configuration (see :mod:`jobqueue.config`);
        ``engine`` lets you hand over one you built (for SQLite, call
        :func:`jobqueue.configure_sqlite` on it). ``queues``: per-queue settings such as
        ``{"mail": {"max_pending": 10_000}}`` (see :mod:`jobqueue.queue_config`), replacing
        ``[tool.jobqueue.queues]`` of pyproject.toml. ``prepared_statements``: PostgreSQL's
        server-side prepared statements, for a producer connected directly (never through
        PgBouncer before 1.21); see :func:`jobqueue.db.create_engine`."""
        self.queue_configs = queue_configs(queues)
        #: The bounded queues' ``max_pending``, checked by every enqueue into them.
        self.max_pending = {
            name: config.max_pending
            for name, config in self.queue_configs.items()
            if config.max_pending is not None
        }
        super().__init__(
            database_url,
            engine=engine,
            sqlite_synchronous=sqlite_synchronous,
            busy_timeout_ms=busy_timeout_ms,
            pool_size=pool_size,
            prepared_statements=prepared_statements,
        )
        self.max_payload_bytes = max_payload_bytes

    def __enter__(self) -> JobQueue:
        return self

    @property
    def admin(self) -> Admin:
        """Operator actions: list, retry, cancel, discard, pause, prune, stats."""
        return Admin(self)

    def enqueue(self, job: Any, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Enqueue ``job`` (a ``@job`` function, a ``Job`` subclass or a registered name)."""
        name, options = target_options(job)
        return self.enqueue_many([build_call(name, options, args, kwargs)])[0]

    def enqueue_many(
        self,
        calls: Sequence[JobCall],
        *,
        connection: Connection | None = None,
        session: AnySession | None = None,
        block: float | timedelta | None = None,
    ) -> list[EnqueuedJob]:
        """Write every call in one transaction: all of them, or (on error) none.

        With ``connection=`` or ``session=`` the rows join the caller's transaction and become
        visible to workers when the caller commits. Into a full bounded queue (``max_pending``)
        it raises :class:`~jobqueue.errors.QueueFullError`, having written nothing, or with
        ``block=`` (seconds or a timedelta) waits up to that long for room first.
        """
        return enqueue_calls(
            self,
            calls,
            max_payload_bytes=self.max_payload_bytes,
            connection=connection,
            session=session,
            block=positive_seconds("block", block),
        )

    def get_job(self, job_id: str) -> JobRecord | None:
        with self.transaction(read_only=True) as connection:
            return store.fetch_job(connection, job_id)

    def count_jobs(self, *, status: str | None = None, queue: str | None = None) -> int:
        with self.transaction(read_only=True) as connection:
            return store.count_jobs(connection, status=status, queue=queue)

    def due_jobs(
        self, *, queues: Sequence[str] | None = None, limit: int | None = 100
    ) -> list[DueJob]:
        """The jobs a worker on ``queues`` (``None``: every queue) would claim now, in the
        order it would claim them: pending, ``scheduled_for`` passed, paused queues skipped.

        Read-only and served by the claim indexes, so it is safe to call on a busy queue (a
        health check, a test asking whether a job whose worker died is still found);
        ``limit=None`` lists them all. The predicate is the claim's own
        (:mod:`jobqueue.store.due`)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        with self.transaction(read_only=True) as connection:
            return due.due_jobs(
                connection,
                queues=list(queues) if queues is not None else None,
                limit=limit,
                now=datetime.now(UTC),
            )


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


_by_engine: weakref.WeakKeyDictionary[Engine, JobQueue] = weakref.WeakKeyDictionary()


def queue_for_engine(engine: Engine) -> JobQueue:
    """A :class:`JobQueue` over an engine the app already has (its ``session=`` or
    ``connection=``), made once per engine: a handle from a transactional enqueue reads the
    job back from the database it was written to, not from the default queue's."""
    with _default_lock:
        found = _by_engine.get(engine)
        if found is None:
            found = _by_engine[engine] = JobQueue(engine=engine)
        return found


def set_default_queue(jobqueue: JobQueue | None) -> None:
    """Make ``jobqueue`` the default (``None`` forgets it; the next use resolves it again)."""
    global _default
    with _default_lock:
        _default = jobqueue


def forget_default_connections() -> None:
    """In a forked child: drop the default queue's pooled connections, which belong to the
    parent, without closing them."""
    if _default is not None:
        _default.forget_connections()


def configure(database_url: str | None = None, **options: Any) -> JobQueue:
    """Create a :class:`JobQueue` with these settings and make it the default."""
    jobqueue = JobQueue(database_url, **options)
    set_default_queue(jobqueue)
    return jobqueue
