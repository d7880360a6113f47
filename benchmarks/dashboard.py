"""How fast the dashboard's pages render over a big table (run by hand, never by the tests).

    python -m benchmarks.dashboard --backend sqlite --backend postgresql --rows 1000000

Fills a throw-away database with ``--rows`` jobs (mostly succeeded, with some failed, pending,
running and cancelled, over several queues and names, ids spread over the last 30 days), then
times each page through the app in-process (Starlette's TestClient: the server's work, no
network), reporting the median and the slowest of ``--repeat`` requests after a warm-up one.
The numbers are in docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from ulid import ULID

from benchmarks.databases import analyze, fresh_database
from jobqueue import JobQueue
from jobqueue.schema import job_queue, job_stats

QUEUES = ("default", "mail", "images", "billing", "reports")
NAMES = (*(f"app.jobs.task_{n}" for n in range(8)), "app.jobs.rare")
# (status, share of rows)
MIX = (("succeeded", 0.96), ("failed", 0.01), ("pending", 0.02), ("cancelled", 0.009))
BATCH = 20_000


def _status(rng: random.Random) -> str:
    draw = rng.random()
    for status, share in MIX:
        if draw < share:
            return status
        draw -= share
    return "running"


def fill(queue: JobQueue, rows: int, seed: int = 7) -> None:
    """Insert ``rows`` jobs in batches; ids are ULIDs of times spread over 30 days, in order."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - timedelta(days=30)
    step = (now - start) / rows
    error = "ValueError: the image was empty\nTraceback (most recent call last):\n  ...\n"
    done = 0
    began = time.perf_counter()
    while done < rows:
        batch = []
        for index in range(done, min(done + BATCH, rows)):
            at = start + step * index
            status = _status(rng)
            name = NAMES[-1] if rng.random() < 0.001 else rng.choice(NAMES[:-1])
            finished = status in ("succeeded", "failed", "cancelled")
            batch.append(
                {
                    "id": str(ULID.from_datetime(at)),
                    "name": name,
                    "args": '{"args": [42, "x"], "kwargs": {}}',
                    "queue": rng.choice(QUEUES),
                    "priority": 0,
                    "status": status,
                    "scheduled_for": at,
                    "attempts": 1 if status != "pending" else 0,
                    "failed_attempts": 25 if status == "failed" else 0,
                    "max_attempts": 25,
                    "created_at": at,
                    "started_at": at if status != "pending" else None,
                    "finished_at": at + timedelta(seconds=1) if finished else None,
                    "claimed_by": "01BENCHMARKWORKER000000000" if status == "running" else None,
                    "last_error": error if status == "failed" else None,
                }
            )
        with queue.transaction() as connection:
            connection.execute(insert(job_queue), batch)
        done += len(batch)
        print(f"\r  inserted {done:,}/{rows:,}", end="", file=sys.stderr, flush=True)
    minute = now.replace(second=0, microsecond=0)
    with queue.transaction() as connection:
        connection.execute(
            insert(job_stats),
            [
                {
                    "minute": minute - timedelta(minutes=m),
                    "queue": q,
                    "process_id": "01BENCHMARKWORKER000000000",
                    "succeeded": rng.randint(100, 900),
                    "retried": rng.randint(0, 20),
                    "failed": rng.randint(0, 5),
                    "discarded": 0,
                }
                for m in range(60)
                for q in QUEUES
            ],
        )
    print(f"\r  inserted {rows:,} rows in {time.perf_counter() - began:.0f} s", file=sys.stderr)


def prepare(queue: JobQueue, *, fresh: bool) -> None:
    """Leave the table as the database's background work soon would after a bulk insert:
    planner statistics everywhere, and on PostgreSQL a vacuum too, which autovacuum runs on an
    insert-mostly table (insert threshold, PostgreSQL 13+) and which index-only scans need
    (the visibility map). ``fresh`` (``--fresh``) measures before that vacuum instead."""
    analyze(queue.engine)
    if queue.dialect == "postgresql" and not fresh:
        with queue.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("VACUUM (ANALYZE) job_queue"))


def time_page(client: Any, url: str, repeat: int) -> tuple[float, float, Any]:
    """Median and slowest milliseconds of ``repeat`` GETs (after one warm-up), and the last
    response."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), max(times), response


def measure(queue: JobQueue, repeat: int) -> list[tuple[str, float, float]]:
    from starlette.testclient import TestClient

    from jobqueue.dashboard import create_app

    client = TestClient(create_app(queue, recurring=[]))
    results = []
    pages = [
        ("overview  GET /", "/"),
        (
            "failed in one queue  GET /jobs?status=failed&queue=mail",
            "/jobs?status=failed&queue=mail",
        ),
    ]
    for label, url in pages:
        median, worst, response = time_page(client, url, repeat)
        results.append((label, median, worst))
        if "queue=mail" in url:
            marker = 'id="next-page" href="'
            link = response.text.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
            median, worst, _ = time_page(client, link, repeat)
            results.append(("  its next page (before=<last id>)", median, worst))
    more = [
        ("all jobs, newest first  GET /jobs", "/jobs"),
        (
            "succeeded in one queue  GET /jobs?status=succeeded&queue=mail",
            "/jobs?status=succeeded&queue=mail",
        ),
        ("pending  GET /jobs?status=pending", "/jobs?status=pending"),
        ("a rare name (0.1%)  GET /jobs?name=app.jobs.rare", "/jobs?name=app.jobs.rare"),
        ("a page deep in the table  GET /jobs?before=<id 20 days old>", None),
        ("failed jobs, every queue  GET /failed", "/failed"),
        ("job detail  GET /jobs/<id>", None),
        ("metrics  GET /metrics", "/metrics"),
    ]
    old = str(ULID.from_datetime(datetime.now(UTC) - timedelta(days=20)))
    newest = client.get("/jobs?limit=1").text.split('data-id="', 1)[1].split('"', 1)[0]
    for label, url in more:
        if url is None:
            url = f"/jobs?before={old}" if "deep" in label else f"/jobs/{newest}"
        median, worst, _ = time_page(client, url, repeat)
        results.append((label, median, worst))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "mysql"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="measure right after the bulk insert, before PostgreSQL's autovacuum has run",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="measure this migrated database instead, filling it first if it has no jobs "
        "(and keeping it: handy when trying out an index)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    if args.database_url:
        queue = JobQueue(args.database_url)
        if not queue.count_jobs():
            fill(queue, args.rows)
            prepare(queue, fresh=args.fresh)
        report(queue, queue.dialect, queue.count_jobs(), args.repeat)
        return 0
    for backend in args.backend or ["sqlite"]:
        with (
            tempfile.TemporaryDirectory() as directory,
            fresh_database(backend, Path(directory)) as database,
        ):
            queue = JobQueue(database.url)
            print(f"{backend}: filling {args.rows:,} jobs", file=sys.stderr)
            fill(queue, args.rows)
            prepare(queue, fresh=args.fresh)
            report(queue, backend, args.rows, args.repeat)
            queue.close()
    return 0


def report(queue: JobQueue, backend: str, rows: int, repeat: int) -> None:
    print(f"\n{backend}, {rows:,} jobs: median / slowest of {repeat}")
    for label, median, worst in measure(queue, repeat):
        print(f"  {label:<66} {median:8.1f} ms {worst:8.1f} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
