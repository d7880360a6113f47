"""``python -m benchmarks.keyed_claims --backend B``: the claim with rate limits on.

The worker's own store functions are called in a loop on one connection, as its claim loop
does: each transaction completes the previous batch and claims the next (``limit`` 50). The
queue holds ``--jobs`` due jobs spread over 1, 100 or 10,000 rate keys (each with a limit
too high to bind, so the figure is the cost of the gate itself: ranking, locking the keys,
counting their windows and recording the starts), and, for comparison, the same number of
plain jobs. Printed: jobs claimed per second and the median claim in milliseconds. Run by
hand; the results are written into docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.databases import BACKENDS, analyze, fresh_database
from jobqueue import JobCall, JobQueue
from jobqueue.runtime import lifecycle
from jobqueue.store import attempts, claims

PROCESS_ID = "0BENCHKEYEDCLAIMS000000000"
BATCH = 50


def calls(jobs: int, keys: int | None) -> list[JobCall]:
    if keys is None:
        return [JobCall("bench.keyed", args=(n,)) for n in range(jobs)]
    return [
        JobCall("bench.keyed", args=(n,), rate_key=f"key-{n % keys}", rate_limits="1000000/1")
        for n in range(jobs)
    ]


def measure(queue: JobQueue, jobs: int, keys: int | None) -> tuple[float, float]:
    """(jobs claimed per second, median claim in ms) for one drained queue."""
    for start in range(0, jobs, 5_000):
        queue.enqueue_many(calls(jobs, keys)[start : start + 5_000])
    analyze(queue.engine)
    with queue.transaction() as connection:
        lifecycle.register(connection, process_id=PROCESS_ID, kind="worker")
    claim_seconds: list[float] = []
    claimed_total = 0
    held: list[tuple[str, int]] = []
    began = time.perf_counter()
    with queue.engine.connect() as connection:
        while True:
            with connection.begin():
                now = datetime.now(UTC)
                if held:
                    attempts.complete_jobs(connection, process_id=PROCESS_ID, fences=held, now=now)
                tick = time.perf_counter()
                taken = claims.claim_jobs(
                    connection, process_id=PROCESS_ID, queues=None, limit=BATCH, now=now
                )
                claim_seconds.append(time.perf_counter() - tick)
            held = [job.fence for job in taken]
            claimed_total += len(taken)
            if not taken:
                break
    elapsed = time.perf_counter() - began
    with queue.transaction() as connection:
        connection.exec_driver_sql("DELETE FROM job_rate_starts")
        connection.exec_driver_sql("DELETE FROM job_semaphores")
        connection.exec_driver_sql("DELETE FROM job_queue")
        connection.exec_driver_sql("DELETE FROM job_processes")
    assert claimed_total == jobs, f"claimed {claimed_total} of {jobs}"
    return claimed_total / elapsed, statistics.median(claim_seconds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.keyed_claims")
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as directory,
        fresh_database(args.backend, Path(directory)) as database,
    ):
        queue = JobQueue(database.url)
        try:
            print(f"{args.backend}: {args.jobs} due jobs, claims of {BATCH}")
            print("keys       jobs/s  median claim ms")
            for keys in (None, 1, 100, 10_000):
                rate, median = measure(queue, args.jobs, keys)
                label = "plain" if keys is None else f"{keys:,}"
                print(f"{label:>6}  {rate:>10,.0f}  {median:>15.2f}")
        finally:
            queue.engine.dispose()


if __name__ == "__main__":
    main()
