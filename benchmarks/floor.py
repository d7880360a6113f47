"""The raw-driver floor of enqueue: ``python -m benchmarks.floor --backend B``.

jobqueue's own INSERT statements (the single enqueue's, and the batch enqueue's), compiled by
SQLAlchemy once and then sent by the bare driver (sqlite3, psycopg, PyMySQL) with every row's
parameters built before the clock starts; on PostgreSQL the batch is the COPY the batch
enqueue sends, of value tuples made before the clock starts. What is left is the driver and
the database: no ids, no JSON, no JobCall, no pool. Issue #19 measures the enqueue paths
against this, so that a missed target names the floor that stops it.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.databases import Database, fresh_database
from jobqueue.db import create_engine
from jobqueue.ids import new_ids
from jobqueue.schema import PENDING
from jobqueue.store import bulk
from jobqueue.store.jobs import insert_alone_statement

BATCH = 1_000


def rows(count: int) -> list[dict[str, Any]]:
    """Plain no-op job rows, as the batch enqueue builds them."""
    now = datetime.now(UTC)
    return [
        {
            "id": job_id,
            "name": "bench.noop",
            "args": '{"args":[]}',
            "queue": "default",
            "priority": 0,
            "status": PENDING,
            "scheduled_for": now,
            "attempts": 0,
            "failed_attempts": 0,
            "max_attempts": 25,
            "created_at": now,
            "concurrency_key": None,
            "unique_key": None,
            "trace_context": None,
        }
        for job_id in new_ids(count)
    ]


def driver_params(database: Database, statement: Any, batch: list[dict[str, Any]]) -> Any:
    """(SQL text, the rows' driver parameters) for ``statement``, as jobqueue sends them."""
    engine = create_engine(database.url)
    try:
        return bulk.driver_parameters(
            engine.dialect, statement, [bulk.row_values(row) for row in batch]
        )
    finally:
        engine.dispose()


def rate(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def sqlite_floor(database: Database, singles: int, batches: int) -> dict[str, float]:
    statement = insert_alone_statement("sqlite", wake=False)
    sql, single = driver_params(database, statement, rows(singles))
    _, batch = driver_params(database, statement, rows(BATCH * batches))
    connection = sqlite3.connect(database.sqlite_path, isolation_level=None)
    connection.execute("PRAGMA synchronous = NORMAL")

    def one_by_one() -> None:
        for params in single:
            connection.execute(sql, params)

    def batched() -> None:
        for start in range(0, len(batch), BATCH):
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(sql, batch[start : start + BATCH])
            connection.execute("COMMIT")

    result = {"single": rate(singles, one_by_one), "batch": rate(len(batch), batched)}
    connection.execute("PRAGMA synchronous = FULL")
    sql, single = driver_params(database, statement, rows(singles))
    result["single, synchronous=FULL"] = rate(singles, one_by_one)
    connection.close()
    return result


def copy_row(value: tuple[Any, ...]) -> tuple[Any, ...]:
    """A plain row's values as the batch enqueue's binary COPY writes them: the timestamps as
    naive UTC (psycopg's binary ``timestamp`` refuses an aware one)."""
    row = list(value)
    for index in (bulk.SCHEDULED_FOR, bulk.CREATED_AT):
        row[index] = row[index].astimezone(UTC).replace(tzinfo=None)
    return tuple(row)


def postgresql_floor(database: Database, singles: int, batches: int) -> dict[str, float]:
    import psycopg

    sql, single = driver_params(
        database, insert_alone_statement("postgresql", wake=True), rows(singles)
    )
    copy_rows = [copy_row(bulk.row_values(row)) for row in rows(BATCH * batches)]
    with psycopg.connect(database.libpq_dsn, autocommit=True, prepare_threshold=None) as conn:

        def one_by_one() -> None:
            for params in single:
                conn.execute(sql, params)

        def copy_batches() -> None:
            for start in range(0, len(copy_rows), BATCH):
                with conn.transaction(), conn.cursor().copy(bulk.COPY_STATEMENT) as copy:
                    copy.set_types(bulk.COPY_TYPES)
                    for row in copy_rows[start : start + BATCH]:
                        copy.write_row(row)

        return {
            "single": rate(singles, one_by_one),
            "batch": rate(len(copy_rows), copy_batches),
        }


def mysql_floor(database: Database, singles: int, batches: int) -> dict[str, float]:
    import pymysql

    statement = insert_alone_statement("mysql", wake=False)
    sql, single = driver_params(database, statement, rows(singles))
    _, batch = driver_params(database, statement, rows(BATCH * batches))
    url = create_engine(database.url).url
    conn = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        charset="utf8mb4",
        autocommit=False,
    )
    cursor = conn.cursor()

    def one_by_one() -> None:
        for params in single:
            cursor.execute(sql, params)
            conn.commit()

    def batched() -> None:
        for start in range(0, len(batch), BATCH):
            cursor.executemany(sql, batch[start : start + BATCH])
            conn.commit()

    result = {"single": rate(singles, one_by_one), "batch": rate(len(batch), batched)}
    conn.close()
    return result


FLOORS = {"sqlite": sqlite_floor, "postgresql": postgresql_floor, "mysql": mysql_floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(FLOORS), required=True)
    parser.add_argument("--single", type=int, default=2_000, help="single inserts per run")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with fresh_database(args.backend, Path(tempfile.mkdtemp())) as database:
            for name, value in FLOORS[args.backend](database, args.single, args.batches).items():
                figures.setdefault(name, []).append(value)
    for name, values in figures.items():
        spread = f"{min(values):,.0f}-{max(values):,.0f}"
        print(
            f"{args.backend} raw driver, {name}: {statistics.median(values):,.0f} rows/s ({spread})"
        )


if __name__ == "__main__":
    main()
