"""procrastinate and PgQueuer on the PostgreSQL workloads: single enqueue, batch enqueue, and
processing of pre-enqueued no-op jobs by each one's own worker command.

Each gets a fresh database of its own with its schema installed by its own code. Neither
worker exits by itself once the queue is empty in the configuration used, so the harness
polls the peer's table for finished jobs and stops the worker once all are done; the figure
is the time from starting the worker to the poll that saw the last one (their shutdown is
not counted, unlike jobqueue's ``--burst`` exit, which is).

PgQueuer is measured twice, once per driver it ships: over psycopg 3 (the driver jobqueue
uses) and over asyncpg (the one its own ``pgq`` CLI tries first, and its fastest), so that
neither its figures nor the ratios against ours hinge on the driver.
"""

from __future__ import annotations

import asyncio
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import psycopg

from benchmarks.databases import Database
from benchmarks.procs import clean_environment, run_until_done, tool

WARMUP_CALLS = 20


@dataclass(frozen=True)
class WorkerConfig:
    label: str
    argv: tuple[str, ...]


class PgPeer(ABC):
    """One PostgreSQL job queue driven through its public API and its own worker CLI."""

    system: str
    #: How the report's configuration column names its single and its bulk enqueue.
    single_label: str
    batch_label: str
    #: The table holding its jobs.
    table: str
    dsn_env = "JQ_BENCH_PG_DSN"

    @abstractmethod
    def install(self, dsn: str) -> None: ...

    @abstractmethod
    def enqueue_single(self, dsn: str, count: int) -> float:
        """Jobs/s, one call (one transaction) per job, after a short untimed warm-up."""

    @abstractmethod
    def enqueue_batch(self, dsn: str, total: int, batch_size: int) -> float:
        """Jobs/s of the peer's bulk enqueue."""

    @abstractmethod
    def worker_configs(self) -> list[WorkerConfig]: ...

    @abstractmethod
    def finished_sql(self) -> str:
        """A query counting the jobs that completed successfully."""

    @abstractmethod
    def queued_sql(self) -> str:
        """A query counting the jobs waiting in the queue."""

    def listed(self) -> dict[str, str]:
        """Name -> version for the report's list of peers (what a reader needs to re-run it)."""
        name, release = self.system.split()[:2]
        return {name: release}

    def count(self, dsn: str, sql: str) -> int:
        with psycopg.connect(dsn, autocommit=True) as connection:
            row = connection.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def processing(
        self, database: Database, jobs: int, config: WorkerConfig, timeout: float
    ) -> float:
        dsn = database.libpq_dsn
        self.enqueue_batch(dsn, jobs, 1000)  # the prefill, not timed
        with psycopg.connect(dsn, autocommit=True) as poll:
            # Statistics for the job table, as autovacuum gathers them after a bulk insert
            # (jobqueue's runs get the same for job_queue).
            poll.execute(f"ANALYZE {self.table}")

            def done() -> int:
                row = poll.execute(self.finished_sql()).fetchone()
                return int(row[0]) if row else 0

            env = clean_environment({self.dsn_env: dsn})
            elapsed = run_until_done(config.argv, env, done=done, total=jobs, timeout=timeout)
        return jobs / elapsed


class Procrastinate(PgPeer):
    system = f"procrastinate {version('procrastinate')}"
    single_label = "defer()"
    batch_label = "batch_defer()"
    table = "procrastinate_jobs"

    def _app(self, dsn: str) -> Any:
        from benchmarks.procrastinate_app import make_app

        return make_app(dsn)

    def install(self, dsn: str) -> None:
        app = self._app(dsn)
        with app.open():
            app.schema_manager.apply_schema()

    def enqueue_single(self, dsn: str, count: int) -> float:
        app = self._app(dsn)
        with app.open():
            for _ in range(WARMUP_CALLS):
                app.configure_task("noop").defer()
            started = time.perf_counter()
            for _ in range(count):
                app.configure_task("noop").defer()
            elapsed = time.perf_counter() - started
        return count / elapsed

    def enqueue_batch(self, dsn: str, total: int, batch_size: int) -> float:
        app = self._app(dsn)
        with app.open():
            app.configure_task("noop").batch_defer({})  # warm-up
            started = time.perf_counter()
            for offset in range(0, total, batch_size):
                size = min(batch_size, total - offset)
                app.configure_task("noop").batch_defer(*({} for _ in range(size)))
            elapsed = time.perf_counter() - started
        return total / elapsed

    def worker_configs(self) -> list[WorkerConfig]:
        base = (tool("procrastinate"), "--app", "benchmarks.procrastinate_app.app", "worker")
        return [
            WorkerConfig(f"worker --concurrency {n}", (*base, "--concurrency", str(n)))
            for n in (1, 4)
        ]

    def finished_sql(self) -> str:
        return "SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'succeeded'"

    def queued_sql(self) -> str:
        return "SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'todo'"


class PgQueuerPeer(PgPeer):
    """PgQueuer over psycopg 3: its synchronous ``SyncQueries`` for enqueueing (what a
    synchronous producer would call), its async driver in the worker."""

    system = f"PgQueuer {version('pgqueuer')} (psycopg)"
    single_label = "enqueue(name, payload)"
    batch_label = "enqueue(lists)"
    table = "pgqueuer"
    #: The ``--driver`` of benchmarks/pgqueuer_app.py.
    driver = "psycopg"

    def install(self, dsn: str) -> None:
        from pgqueuer import Queries
        from pgqueuer.db import PsycopgDriver

        async def run() -> None:
            connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
            try:
                await Queries(PsycopgDriver(connection)).install()
            finally:
                await connection.close()

        asyncio.run(run())

    def _queries(self, connection: psycopg.Connection[Any]) -> Any:
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        return SyncQueries(SyncPsycopgDriver(connection))

    def enqueue_single(self, dsn: str, count: int) -> float:
        with psycopg.connect(dsn, autocommit=True) as connection:
            queries = self._queries(connection)
            for _ in range(WARMUP_CALLS):
                queries.enqueue("noop", None)
            started = time.perf_counter()
            for _ in range(count):
                queries.enqueue("noop", None)
            elapsed = time.perf_counter() - started
        return count / elapsed

    def enqueue_batch(self, dsn: str, total: int, batch_size: int) -> float:
        with psycopg.connect(dsn, autocommit=True) as connection:
            queries = self._queries(connection)
            queries.enqueue(["noop"], [None], [0])  # warm-up
            started = time.perf_counter()
            for offset in range(0, total, batch_size):
                size = min(batch_size, total - offset)
                queries.enqueue(["noop"] * size, [None] * size, [0] * size)
            elapsed = time.perf_counter() - started
        return total / elapsed

    def worker_configs(self) -> list[WorkerConfig]:
        # `pgq run` itself fails at start in 1.6.0 (see benchmarks/pgqueuer_app.py); this
        # runs the same pgqueuer.run() with the same logging.
        base = (sys.executable, "-m", "benchmarks.pgqueuer_app", "--driver", self.driver)
        return [
            WorkerConfig(
                f"pgqueuer.run(batch_size={n}) (= pgq run --batch-size {n})",
                (*base, "--batch-size", str(n)),
            )
            for n in (10,)
        ]

    def finished_sql(self) -> str:
        return "SELECT COUNT(*) FROM pgqueuer_log WHERE status = 'successful'"

    def queued_sql(self) -> str:
        return "SELECT COUNT(*) FROM pgqueuer WHERE status = 'queued'"


class PgQueuerAsyncpg(PgQueuerPeer):
    """PgQueuer over asyncpg, through its own ``AsyncpgDriver`` on one connection, as the
    psycopg worker has one. asyncpg has no synchronous API, so enqueueing awaits the async
    ``Queries.enqueue`` in one event loop; the schema is installed over psycopg (not timed)."""

    system = f"PgQueuer {version('pgqueuer')} (asyncpg)"
    single_label = "await enqueue(name, payload)"
    batch_label = "await enqueue(lists)"
    driver = "asyncpg"

    def listed(self) -> dict[str, str]:
        return {**super().listed(), "asyncpg": version("asyncpg")}

    def enqueue_single(self, dsn: str, count: int) -> float:
        async def run() -> float:
            async with _asyncpg_queries(dsn) as queries:
                for _ in range(WARMUP_CALLS):
                    await queries.enqueue("noop", None)
                started = time.perf_counter()
                for _ in range(count):
                    await queries.enqueue("noop", None)
                return count / (time.perf_counter() - started)

        return asyncio.run(run())

    def enqueue_batch(self, dsn: str, total: int, batch_size: int) -> float:
        async def run() -> float:
            async with _asyncpg_queries(dsn) as queries:
                await queries.enqueue(["noop"], [None], [0])  # warm-up
                started = time.perf_counter()
                for offset in range(0, total, batch_size):
                    size = min(batch_size, total - offset)
                    await queries.enqueue(["noop"] * size, [None] * size, [0] * size)
                return total / (time.perf_counter() - started)

        return asyncio.run(run())


@asynccontextmanager
async def _asyncpg_queries(dsn: str) -> AsyncIterator[Any]:
    """PgQueuer's async ``Queries`` over one asyncpg connection (autocommit, asyncpg's
    default outside a transaction), closed on the way out: the driver leaves that to us."""
    import asyncpg
    from pgqueuer import Queries
    from pgqueuer.db import AsyncpgDriver

    connection = await asyncpg.connect(dsn)
    try:
        yield Queries(AsyncpgDriver(connection))
    finally:
        await connection.close()


PEERS: tuple[type[PgPeer], ...] = (Procrastinate, PgQueuerPeer, PgQueuerAsyncpg)
