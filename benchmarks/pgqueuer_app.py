"""PgQueuer's side of the benchmark: the factory ``pgq run benchmarks.pgqueuer_app:create``
loads, with a no-op ``async def`` entrypoint (PgQueuer runs entrypoints on its event loop).

It uses psycopg 3's async connection, the same driver jobqueue uses on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pgqueuer
import psycopg
from pgqueuer import PgQueuer
from pgqueuer.core import logconfig
from pgqueuer.db import PsycopgDriver
from pgqueuer.models import Job

DSN_ENV = "JQ_BENCH_PG_DSN"


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    connection = await psycopg.AsyncConnection.connect(os.environ[DSN_ENV], autocommit=True)
    try:
        pgq = PgQueuer(PsycopgDriver(connection))

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            """Does nothing."""

        yield pgq
    finally:
        await connection.close()


def main() -> None:
    """What ``pgq run benchmarks.pgqueuer_app:create --batch-size N`` does: the same logging
    set-up and the same ``pgqueuer.run``. (``pgq run`` of PgQueuer 1.6.0 stops at start with
    typer 0.29, ``AttributeError: 'str' object has no attribute 'name'``: its --log-level
    parser returns a string where an enum is expected.)"""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pgqueuer_app")
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    logconfig.setup_fancy_logger(logconfig.LogLevel.INFO)
    asyncio.run(pgqueuer.run(create, batch_size=args.batch_size))


if __name__ == "__main__":
    main()
