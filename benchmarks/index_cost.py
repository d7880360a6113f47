"""What each job_queue index costs writers: ``python -m benchmarks.index_cost [--backend B]``.

SQLite: the raw driver's executemany of plain job rows (jobqueue's own INSERT, parameters built
before the clock starts, 1,000 rows a transaction at synchronous=NORMAL). PostgreSQL: the batch
enqueue's own binary COPY of plain job rows (made before the clock starts, 1,000 a
transaction), with the server process's CPU per row read from ``/proc`` (the server must be on
this machine). Each into a migrated table with every index, then with each full index dropped
in turn, then with no secondary index. Issue #19 asked what each index costs writers against
what it saves readers (the claim cost section shows the readers).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.databases import Database, fresh_database
from benchmarks.floor import copy_row, driver_params, rows
from jobqueue.store import bulk
from jobqueue.store.bulk import PLAIN_INSERT


def rate(connection: sqlite3.Connection, database: Database, batches: int, runs: int) -> float:
    """Median rows/s of ``batches`` transactions of 1,000 rows into an emptied table."""
    sql, _ = driver_params(database, PLAIN_INSERT, rows(1))
    figures = []
    for _ in range(runs):
        connection.execute("DELETE FROM job_queue")
        prepared = [driver_params(database, PLAIN_INSERT, rows(1000))[1] for _ in range(batches)]
        started = time.perf_counter()
        for batch in prepared:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(sql, batch)
            connection.execute("COMMIT")
        figures.append(batches * 1000 / (time.perf_counter() - started))
    return statistics.median(figures)


def sqlite_table(batches: int, runs: int) -> None:
    with fresh_database("sqlite", Path(tempfile.mkdtemp())) as database:
        connection = sqlite3.connect(database.sqlite_path, isolation_level=None)
        connection.execute("PRAGMA synchronous = NORMAL")
        indexes = dict(
            connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'job_queue' AND sql IS NOT NULL"
            ).fetchall()
        )
        print("| table | rows/s | against every index |\n|---|---:|---:|")
        every = rate(connection, database, batches, runs)
        print(f"| every index | {every:,.0f} | |")
        for name, create in indexes.items():
            connection.execute(f"DROP INDEX {name}")
            without = rate(connection, database, batches, runs)
            connection.execute(create)
            print(f"| without {name} | {without:,.0f} | {100 * (without / every - 1):+.0f} % |")
        for name in indexes:
            connection.execute(f"DROP INDEX {name}")
        none = rate(connection, database, batches, runs)
        print(f"| no secondary index | {none:,.0f} | {100 * (none / every - 1):+.0f} % |")
        connection.close()


def server_seconds(pid: int) -> float:
    """User and system CPU seconds of a local server process, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def copy_rate(connection: Any, batches: int, runs: int) -> tuple[float, float]:
    """Median rows/s and server CPU us a row of ``batches`` binary COPYs of 1,000 rows."""
    pid = connection.info.backend_pid
    figures, server = [], []
    for _ in range(runs):
        connection.execute("TRUNCATE job_queue")
        connection.commit()
        prepared = [[copy_row(bulk.row_values(row)) for row in rows(1000)] for _ in range(batches)]
        cpu, started = server_seconds(pid), time.perf_counter()
        for batch in prepared:
            with connection.cursor() as cursor, cursor.copy(bulk.COPY_STATEMENT) as copy:
                copy.set_types(bulk.COPY_TYPES)
                for value in batch:
                    copy.write_row(value)
            connection.commit()
        figures.append(batches * 1000 / (time.perf_counter() - started))
        server.append((server_seconds(pid) - cpu) / batches * 1000)
    return statistics.median(figures), statistics.median(server)


def postgresql_table(batches: int, runs: int) -> None:
    import psycopg

    with (
        fresh_database("postgresql", Path(tempfile.mkdtemp())) as database,
        psycopg.connect(database.libpq_dsn) as connection,
    ):
        indexes: dict[str, str] = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'job_queue' "
                "AND indexname <> 'pk_job_queue'"
            ).fetchall()
        )
        full = [name for name, create in indexes.items() if " WHERE " not in create]
        print("| table | rows/s | against every index | server CPU a row |\n|---|---:|---:|---:|")
        every, cpu = copy_rate(connection, batches, runs)
        print(f"| every index | {every:,.0f} | | {cpu:.1f} us |")
        for name in full:
            connection.execute(f"DROP INDEX {name}")
            without, cpu = copy_rate(connection, batches, runs)
            connection.execute(indexes[name])
            change = 100 * (without / every - 1)
            print(f"| without {name} | {without:,.0f} | {change:+.0f} % | {cpu:.1f} us |")
        for name in indexes:
            connection.execute(f"DROP INDEX {name}")
        none, cpu = copy_rate(connection, batches, runs)
        change = 100 * (none / every - 1)
        print(f"| no secondary index | {none:,.0f} | {change:+.0f} % | {cpu:.1f} us |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batches", type=int, default=20, help="transactions of 1,000 rows")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.backend == "sqlite":
        sqlite_table(args.batches, args.runs)
    else:
        postgresql_table(args.batches, args.runs)


if __name__ == "__main__":
    main()
