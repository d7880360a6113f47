"""PgQueuer's side of the benchmark: the factories ``pgq run benchmarks.pgqueuer_app:create``
(or ``:create_asyncpg``) loads, with a no-op ``async def`` entrypoint (PgQueuer runs
entrypoints on its event loop).

One factory per driver PgQueuer ships, each on a single connection: ``create`` uses psycopg 3's
async connection, the same driver jobqueue uses on PostgreSQL; ``create_asyncpg`` uses asyncpg
through PgQueuer's own ``AsyncpgDriver``, the driver its ``pgq`` CLI tries first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pgqueuer
import psycopg
from pgqueuer import PgQueuer
from pgqueuer.core import logconfig
from pgqueuer.db import AsyncpgDriver, PsycopgDriver
from pgqueuer.models import Job

DSN_ENV = "JQ_BENCH_PG_DSN"


def _with_noop(pgq: PgQueuer) -> PgQueuer:
    """Registers the one entrypoint the benchmark's jobs name, the same for either driver."""

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        """Does nothing."""

    return pgq


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    connection = await psycopg.AsyncConnection.connect(os.environ[DSN_ENV], autocommit=True)
    try:
        yield _with_noop(PgQueuer(PsycopgDriver(connection)))
    finally:
        await connection.close()


@asynccontextmanager
async def create_asyncpg() -> AsyncIterator[PgQueuer]:
    """asyncpg is in autocommit outside a transaction, as the psycopg connection is set to;
    ``AsyncpgDriver`` does not close the connection, so this does. asyncpg is imported here,
    not at the top, so the psycopg worker's timed start-up does not pay for it."""
    import asyncpg

    connection = await asyncpg.connect(os.environ[DSN_ENV])
    try:
        yield _with_noop(PgQueuer(AsyncpgDriver(connection)))
    finally:
        await connection.close()


FACTORIES: dict[str, Callable[[], AbstractAsyncContextManager[PgQueuer]]] = {
    "psycopg": create,
    "asyncpg": create_asyncpg,
}


def main() -> None:
    """What ``pgq run benchmarks.pgqueuer_app:create --batch-size N`` does: the same logging
    set-up and the same ``pgqueuer.run``. (``pgq run`` of PgQueuer 1.6.0 stops at start with
    typer 0.29, ``AttributeError: 'str' object has no attribute 'name'``: its --log-level
    parser returns a string where an enum is expected.)"""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pgqueuer_app")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--driver", choices=sorted(FACTORIES), default="psycopg")
    args = parser.parse_args()
    logconfig.setup_fancy_logger(logconfig.LogLevel.INFO)
    asyncio.run(pgqueuer.run(FACTORIES[args.driver], batch_size=args.batch_size))


if __name__ == "__main__":
    main()
