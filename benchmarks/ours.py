"""jobqueue's own workloads: enqueue rates, processing throughput of the real ``jobrunner work``
command, enqueue-to-start latency with idle workers, and worker memory over a long run.

Everything goes through the public API (``@job``, ``JobQueue``, ``enqueue``, ``enqueue_many``)
and the ``jobrunner`` console script, so the figures are what a user gets, start-up included.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select

from benchmarks import bench_jobs
from benchmarks.databases import Database, analyze, analyze_pauses
from benchmarks.procs import (
    BenchmarkError,
    Running,
    children,
    clean_environment,
    memory_kib,
    run_to_exit,
    tool,
)
from benchmarks.results import Table, fmt
from jobqueue import JobQueue, set_default_queue
from jobqueue.schema import SUCCEEDED, job_processes

SYSTEM = "jobqueue"
APP = "benchmarks.bench_jobs"
#: enqueue() calls made before the clock starts: the first one creates the engine, opens a
#: connection and checks the schema revision, which a long-running producer pays once.
WARMUP_CALLS = 20

Synchronous = Literal["NORMAL", "FULL"]


@contextmanager
def default_queue(
    database: Database, synchronous: Synchronous = "NORMAL", *, prepared: bool = False
) -> Iterator[JobQueue]:
    """A JobQueue made the process default, as an app's configuration would, then closed."""
    jobqueue = JobQueue(database.url, sqlite_synchronous=synchronous, prepared_statements=prepared)
    set_default_queue(jobqueue)
    try:
        yield jobqueue
    finally:
        set_default_queue(None)
        jobqueue.close()


def _expect(jobqueue: JobQueue, status: str | None, count: int, what: str) -> None:
    found = jobqueue.count_jobs(status=status)
    if found != count:
        raise BenchmarkError(f"{what}: expected {count} {status or 'total'} jobs, found {found}")


def enqueue_single(
    database: Database, count: int, synchronous: Synchronous = "NORMAL", *, prepared: bool = False
) -> float:
    """Jobs/s of ``noop.enqueue()``, one transaction per call, as a web request would
    (``prepared``: with PostgreSQL's prepared statements, ``JobQueue(prepared_statements=)``)."""
    with default_queue(database, synchronous, prepared=prepared) as jobqueue:
        for _ in range(WARMUP_CALLS):
            bench_jobs.noop.enqueue()
        started = time.perf_counter()
        for _ in range(count):
            bench_jobs.noop.enqueue()
        elapsed = time.perf_counter() - started
        _expect(jobqueue, None, count + WARMUP_CALLS, "enqueue()")
    return count / elapsed


def enqueue_batches(database: Database, total: int, batch_size: int) -> float:
    """Jobs/s of ``enqueue_many`` in batches of ``batch_size`` (building the calls included)."""
    with default_queue(database) as jobqueue:
        jobqueue.enqueue_many([bench_jobs.noop.call()])  # warm-up: engine and schema check
        started = time.perf_counter()
        for offset in range(0, total, batch_size):
            size = min(batch_size, total - offset)
            jobqueue.enqueue_many([bench_jobs.noop.call() for _ in range(size)])
        elapsed = time.perf_counter() - started
        _expect(jobqueue, None, total + 1, "enqueue_many()")
    return total / elapsed


def prefill(database: Database, count: int) -> None:
    """``count`` due no-op jobs, written fast (enqueue_many) and not timed; then the planner
    statistics a server gathers by itself soon after a bulk insert (see
    :func:`databases.analyze`), so every run gets the plan production gets."""
    with default_queue(database) as jobqueue:
        for offset in range(0, count, 1000):
            jobqueue.enqueue_many(
                [bench_jobs.noop.call() for _ in range(min(1000, count - offset))]
            )
        analyze(jobqueue.engine)


def work_command(
    database: Database,
    *,
    processes: int = 1,
    threads: int = 5,
    synchronous: Synchronous = "NORMAL",
    burst: bool = True,
) -> list[str]:
    """The ``jobrunner work`` command line a user would type, default logging."""
    argv = [tool("jobrunner"), "work", "--app", APP, "--database-url", database.url]
    if burst:
        argv.append("--burst")
    argv += ["--processes", str(processes), "--threads", str(threads)]
    if database.backend == "sqlite" and synchronous != "NORMAL":
        argv += ["--sqlite-synchronous", synchronous]
    return argv


def processing(
    database: Database,
    jobs: int,
    *,
    processes: int,
    threads: int,
    synchronous: Synchronous = "NORMAL",
    pauses_analyzed: bool = False,
    timeout: float,
) -> float:
    """Jobs/s of ``jobrunner work --burst`` draining ``jobs`` pre-enqueued no-op jobs: the wall
    clock of the whole command, from starting it to its exit. ``pauses_analyzed``: the
    PostgreSQL diagnostic of :func:`databases.analyze_pauses`."""
    prefill(database, jobs)
    if pauses_analyzed:
        with JobQueue(database.url) as jobqueue:
            analyze_pauses(jobqueue.engine)
    argv = work_command(database, processes=processes, threads=threads, synchronous=synchronous)
    elapsed = run_to_exit(argv, clean_environment(), timeout)
    with JobQueue(database.url) as jobqueue:
        _expect(jobqueue, SUCCEEDED, jobs, "jobrunner work --burst")
    return jobs / elapsed


def _worker_registered(jobqueue: JobQueue) -> bool:
    with jobqueue.transaction(read_only=True) as connection:
        query = select(func.count()).select_from(job_processes)
        return bool(connection.execute(query.where(job_processes.c.kind == "worker")).scalar())


def latency(
    database: Database,
    probes: int,
    spacing: float,
    *,
    workdir: Path,
    timeout: float,
    settle: float = 3.0,
) -> list[float]:
    """Milliseconds from ``enqueue()`` to the job's first line, for ``probes`` jobs enqueued
    one at a time ``spacing`` seconds apart, to a worker (1 process x 5 threads, not burst)
    that has been idle for ``settle`` seconds, long enough for its poll to back off fully."""
    record = workdir / f"latency-{uuid.uuid4().hex[:8]}.txt"
    record.write_text("")
    env = clean_environment({bench_jobs.LATENCY_FILE_ENV: str(record)})
    with default_queue(database) as jobqueue:
        jobqueue.verify_schema()  # the producer's own warm-up, without enqueuing anything
        running = Running.start(work_command(database, burst=False), env)
        try:
            deadline = time.monotonic() + 60
            while not _worker_registered(jobqueue):
                if running.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchmarkError(f"the worker did not start\n{running.output()}")
                time.sleep(0.05)
            time.sleep(settle)
            next_at = time.monotonic()
            for _ in range(probes):
                bench_jobs.latency_probe.enqueue(time.time())
                next_at += spacing
                time.sleep(max(0.0, next_at - time.monotonic()))
            deadline = time.monotonic() + timeout
            while len(lines := record.read_text().splitlines()) < probes:
                if running.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"{len(lines)} of {probes} latency probes ran\n{running.output()}"
                    )
                time.sleep(0.05)
        finally:
            code = running.stop()
        if code != 0:
            raise BenchmarkError(f"the worker exited with {code} on SIGTERM\n{running.output()}")
        _expect(jobqueue, SUCCEEDED, probes, "latency probes")
    record.unlink()
    samples = [line.split() for line in lines]
    return [(float(started) - float(enqueued)) * 1000 for enqueued, started in samples]


@dataclass
class MemorySample:
    seconds: float
    done: int
    rss_kib: dict[int, int]  # per worker pid
    hwm_kib: dict[int, int]
    supervisor_rss_kib: int


def memory(
    database: Database,
    jobs: int,
    *,
    timeout: float,
    wave: int = 10_000,
    every: float = 0.25,
) -> Table:
    """Resident memory of the worker process of ``jobrunner work`` (1 x 5, not burst) over
    ``jobs`` no-op jobs, sampled from /proc every ``every`` seconds with the count of
    succeeded jobs at that moment.

    The jobs arrive in waves of ``wave`` (the next one once fewer than half a wave are left),
    as a long-running worker sees a steady flow, rather than as one backlog of ``jobs``: the
    figure is about the worker's memory, not about how the database copes with a backlog of
    100,000 (which the processing and claim-cost workloads measure). The worker is stopped
    with SIGTERM once all are done."""
    samples: list[MemorySample] = []
    enqueued = min(wave, jobs)
    prefill(database, enqueued)
    with default_queue(database) as jobqueue:
        running = Running.start(work_command(database, burst=False), clean_environment())
        try:
            while True:
                if time.perf_counter() - running.started > timeout:
                    raise BenchmarkError(f"memory run exceeded {timeout:g} s\n{running.output()}")
                if running.process.poll() is not None:
                    raise BenchmarkError(f"jobrunner work exited early\n{running.output()}")
                done = jobqueue.count_jobs(status=SUCCEEDED)
                readings = {pid: memory_kib(pid) for pid in children(running.pid)}
                live = {pid: r for pid, r in readings.items() if r is not None}
                own = memory_kib(running.pid)
                if live and own is not None:
                    samples.append(
                        MemorySample(
                            time.perf_counter() - running.started,
                            done,
                            {pid: r[0] for pid, r in live.items()},
                            {pid: r[1] for pid, r in live.items()},
                            own[0],
                        )
                    )
                if done >= jobs:
                    break
                if enqueued < jobs and enqueued - done < wave // 2:
                    size = min(wave, jobs - enqueued)
                    for offset in range(0, size, 1000):
                        count = min(1000, size - offset)
                        jobqueue.enqueue_many([bench_jobs.noop.call() for _ in range(count)])
                    enqueued += size
                time.sleep(every)
        finally:
            code = running.stop()
        if code != 0:
            raise BenchmarkError(f"jobrunner work exited with {code}\n{running.output()}")
        _expect(jobqueue, SUCCEEDED, jobs, "memory run")
    if not samples:
        raise BenchmarkError("no memory sample was taken: the run was too short")
    return _memory_table(samples, jobs)


def _memory_table(samples: list[MemorySample], jobs: int) -> Table:
    def mib(kib: int) -> str:
        return f"{kib / 1024:.1f}"

    picks: list[tuple[str, MemorySample]] = [("first sample", samples[0])]
    for fraction in (0.1, 0.5):
        reached = next((s for s in samples if s.done >= fraction * jobs), None)
        if reached is not None:
            picks.append((f"{fraction:.0%} done", reached))
    picks.append(("last sample", samples[-1]))
    rows = [
        [
            label,
            f"{sample.done:,}",
            f"{sample.seconds:.1f}",
            " / ".join(mib(v) for v in sample.rss_kib.values()),
            " / ".join(mib(v) for v in sample.hwm_kib.values()),
            mib(sample.supervisor_rss_kib),
        ]
        for label, sample in picks
    ]
    peak = max(max(s.hwm_kib.values()) for s in samples)
    return Table(
        title=f"Worker memory over {jobs:,} no-op jobs (jobrunner work, 1 process x 5 threads)",
        header=["when", "jobs done", "s", "worker VmRSS MiB", "worker VmHWM MiB", "supervisor MiB"],
        rows=rows,
        note=f"Peak worker RSS (VmHWM): {fmt(peak / 1024, 'MiB')}; {len(samples)} samples.",
    )
