"""The automatic prefetch: about 50 ms of work beyond the busy threads, by the average job time."""

from __future__ import annotations

from pathlib import Path

from jobqueue.runtime.worker import MAX_PREFETCH, Worker
from jobqueue.settings import WorkerSettings


def worker(tmp_path: Path, **options: object) -> Worker:
    return Worker(WorkerSettings(database_url=f"sqlite:///{tmp_path}/q.db", threads=5, **options))  # type: ignore[arg-type]


def test_automatic_prefetch_follows_the_average_job_time(tmp_path: Path) -> None:
    auto = worker(tmp_path)
    assert auto.claim_loop.limits() == (10, 5)  # nothing measured yet: one per thread
    auto.in_flight.job_seconds = 0.0001  # tiny jobs: a big batch per claim, refilled at half
    assert auto.claim_loop.limits() == (5 + MAX_PREFETCH, 5 + MAX_PREFETCH // 2)
    auto.in_flight.job_seconds = 0.01  # 5 threads x 50 ms / 10 ms
    assert auto.claim_loop.limits() == (30, 17)
    auto.in_flight.job_seconds = 2.0  # long jobs are not hoarded
    assert auto.claim_loop.limits() == (10, 5)


def test_a_fixed_prefetch_is_kept(tmp_path: Path) -> None:
    fixed = worker(tmp_path, prefetch=20)
    fixed.in_flight.job_seconds = 0.0001
    assert fixed.claim_loop.limits() == (25, 5)
    assert worker(tmp_path, prefetch=0).claim_loop.limits() == (5, 4)
