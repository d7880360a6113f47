"""``python -m benchmarks.steps``: what a durable step costs.

A job of ``--steps`` no-op steps, drained in-process through the worker's own code path
(``jobqueue.testing.drain``), against the same job without steps, on SQLite (a temporary file)
and on the local PostgreSQL and MariaDB servers (a database created and dropped here). Each step
is one write transaction (the fenced lock of the job's row, the step's row, the commit), so the
difference per step is about one commit on that backend. Prints jobs/s and ms per step.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sqlalchemy import create_engine, text

from jobqueue import JobQueue, job, migrations, set_default_queue, step
from jobqueue.testing import drain

SERVERS = (
    ("postgresql+psycopg://postgres@127.0.0.1:5432", "postgres"),
    ("mysql+pymysql://root@127.0.0.1:3306", "test"),
)
DATABASE = "jq_bench_steps"


def _same(value: int) -> int:
    return value


@job(name="bench.with_steps")
def with_steps(steps: int) -> int:
    return sum(step(f"step-{i}", _same, i) for i in range(steps))


@job(name="bench.without_steps")
def without_steps(steps: int) -> int:
    return sum(range(steps))


def measure(url: str, *, jobs: int, steps: int) -> str:
    """One line: jobs/s without and with steps, and the cost of one step in ms."""
    queue = JobQueue(url)
    try:
        migrations.upgrade(queue.engine)
        set_default_queue(queue)
        seconds = {}
        for target in (without_steps, with_steps):
            queue.enqueue_many([target.call(steps) for _ in range(jobs)])
            started = time.perf_counter()
            drain(queue)
            seconds[target.name] = time.perf_counter() - started
    finally:
        set_default_queue(None)
        queue.close()
    plain, stepped = seconds["bench.without_steps"], seconds["bench.with_steps"]
    per_step = (stepped - plain) / (jobs * steps) * 1000
    return (
        f"{queue.dialect:10} without steps {jobs / plain:7,.0f} jobs/s   "
        f"{steps} steps {jobs / stepped:6,.0f} jobs/s   {per_step:.2f} ms per step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(measure(f"sqlite:///{tempfile.mkdtemp()}/steps.db", jobs=args.jobs, steps=args.steps))
    for server, maintenance_db in SERVERS:
        admin = create_engine(f"{server}/{maintenance_db}", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE}"))
            connection.execute(text(f"CREATE DATABASE {DATABASE}"))
        try:
            print(measure(f"{server}/{DATABASE}", jobs=args.jobs, steps=args.steps))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE {DATABASE}"))
            admin.dispose()


if __name__ == "__main__":
    main()
