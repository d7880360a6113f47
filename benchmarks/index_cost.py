"""What each job_queue index costs SQLite's writers: ``python -m benchmarks.index_cost``.

The raw driver's executemany of plain job rows (jobqueue's own INSERT, parameters built before
the clock starts, 1,000 rows a transaction at synchronous=NORMAL) into a migrated table with
every index, then with each one dropped in turn, then with none. Issue #19 asked what each
index costs writers against what it saves readers (the claim cost section shows the readers).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.databases import Database, fresh_database
from benchmarks.floor import driver_params, rows
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="transactions of 1,000 rows")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with fresh_database("sqlite", Path(tempfile.mkdtemp())) as database:
        connection = sqlite3.connect(database.sqlite_path, isolation_level=None)
        connection.execute("PRAGMA synchronous = NORMAL")
        indexes = dict(
            connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'job_queue' AND sql IS NOT NULL"
            ).fetchall()
        )
        every = rate(connection, database, args.batches, args.runs)
        print(f"| every index | {every:,.0f} | |")
        for name, create in indexes.items():
            connection.execute(f"DROP INDEX {name}")
            without = rate(connection, database, args.batches, args.runs)
            connection.execute(create)
            print(f"| without {name} | {without:,.0f} | {100 * (without / every - 1):+.0f} % |")
        for name in indexes:
            connection.execute(f"DROP INDEX {name}")
        none = rate(connection, database, args.batches, args.runs)
        print(f"| no secondary index | {none:,.0f} | {100 * (none / every - 1):+.0f} % |")
        connection.close()


if __name__ == "__main__":
    main()
