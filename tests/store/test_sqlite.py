"""SQLite done right: WAL, busy_timeout, synchronous, BEGIN IMMEDIATE, no 'database is locked'."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy import create_engine as plain_engine

from jobqueue import DatabaseUnavailableError, JobQueue, configure_sqlite, job, migrations
from jobqueue.db import READ_ONLY, create_engine
from jobqueue.schema import job_queue


@job(name="tests.sqlite_noop")
def noop(i: int) -> None: ...


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    engine = create_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    return url


def _pragma(queue: JobQueue, name: str) -> object:
    with queue.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_pragmas(sqlite_url: str) -> None:
    with JobQueue(sqlite_url) as queue:
        assert _pragma(queue, "journal_mode") == "wal"
        assert _pragma(queue, "busy_timeout") == 10_000
        assert _pragma(queue, "synchronous") == 1  # NORMAL
    with JobQueue(sqlite_url, sqlite_synchronous="FULL", busy_timeout_ms=2500) as queue:
        assert _pragma(queue, "synchronous") == 2  # FULL
        assert _pragma(queue, "busy_timeout") == 2500


def test_write_transactions_begin_immediate_and_reads_deferred(sqlite_url: str) -> None:
    with JobQueue(sqlite_url) as queue, queue.engine.connect() as holder:
        holder.begin()  # BEGIN IMMEDIATE: holds the write lock from the start
        holder.execute(text("SELECT 1"))
        with JobQueue(sqlite_url, busy_timeout_ms=100) as other:
            # A read (deferred) still works while the write lock is held (WAL).
            with other.engine.connect() as reader:
                reader = reader.execution_options(**READ_ONLY)
                with reader.begin():
                    assert reader.execute(text("SELECT count(*) FROM job_queue")).scalar() == 0
            # A write waits for the lock at BEGIN, for busy_timeout, not failing mid-transaction.
            with pytest.raises(DatabaseUnavailableError, match="stayed locked"):
                other.enqueue(noop, 1)
        holder.rollback()


def test_concurrent_enqueues_from_threads_never_see_database_is_locked(sqlite_url: str) -> None:
    errors: list[BaseException] = []
    with JobQueue(sqlite_url) as queue:
        start = threading.Barrier(8)

        def produce(worker: int) -> None:
            try:
                start.wait()
                for i in range(100):
                    if i % 10 == 0:
                        queue.enqueue_many([noop.call(worker * 1000 + i + k) for k in range(10)])
                    elif i % 2:
                        queue.enqueue(noop, worker * 1000 + i)
                    else:
                        # Read, then write, in one transaction: with a deferred BEGIN the read
                        # takes a snapshot and the write fails at once with "database is
                        # locked" when another thread committed meanwhile.
                        with queue.transaction() as connection:
                            connection.execute(select(func.count()).select_from(job_queue))
                            queue.enqueue_many(
                                [noop.call(worker * 1000 + i)], connection=connection
                            )
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert queue.count_jobs() == 8 * (90 + 10 * 10)


def _begin_waits_for_the_writer(engine: Engine) -> None:
    """A second writer's BEGIN waits for the first to commit: BEGIN IMMEDIATE, not deferred
    (a deferred BEGIN would return at once and fail later, at its first write)."""
    locked = threading.Event()
    committing: list[float] = []

    def hold_the_write_lock() -> None:
        with engine.connect() as holder, holder.begin():
            locked.set()
            time.sleep(0.5)
            committing.append(time.monotonic())

    thread = threading.Thread(target=hold_the_write_lock)
    thread.start()
    try:
        assert locked.wait(10)
        with engine.connect() as writer, writer.begin():
            began = time.monotonic()
            writer.execute(text("DELETE FROM job_queue"))
        assert committing and began >= committing[0]
    finally:
        thread.join(10)


def test_configure_sqlite_on_a_users_engine(sqlite_url: str) -> None:
    engine = plain_engine(sqlite_url)
    configure_sqlite(engine, synchronous="FULL", busy_timeout_ms=4000)
    configure_sqlite(engine, synchronous="FULL", busy_timeout_ms=4000)  # twice is safe
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4000
        with engine.begin() as connection:  # one BEGIN IMMEDIATE, not two
            connection.execute(text("SELECT count(*) FROM job_queue"))
        _begin_waits_for_the_writer(engine)
    finally:
        engine.dispose()


def test_configure_sqlite_on_an_engine_jobqueue_created(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    configure_sqlite(engine, busy_timeout_ms=3000)  # new connections get the settings given last
    try:
        with engine.begin() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
        _begin_waits_for_the_writer(engine)
        with JobQueue(engine=engine) as queue:
            queue.enqueue(noop, 1)
            assert queue.count_jobs() == 1
    finally:
        engine.dispose()
