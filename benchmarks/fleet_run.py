"""A fleet of ``jobrunner work`` supervisors against one database, and the closed-loop run:
a backlog written beforehand, drained by the whole fleet at once.

Each supervisor stands in for one machine: its own ``jobrunner work`` command, process group
and connections, exactly as a user starts one per host. They all start on one 2-core machine
here, so the fleet competes with itself and with the database for the same cores; the
measurements say how much of each core went where.

The backlog waits behind a paused queue until every worker of every supervisor has registered,
and is released with one resume (which PostgreSQL announces by NOTIFY; MariaDB's workers see
it at their next poll, at most ``--poll-interval``, 1 s, later). Otherwise the supervisors
started first would drain much of the backlog before the last ones were up, and the point
would measure a smaller fleet than it names.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select

from benchmarks import bench_jobs
from benchmarks.databases import Database, analyze, fresh_database
from benchmarks.fleet_server import Sample, ServerProbe, costs
from benchmarks.ours import work_command
from benchmarks.procs import BenchmarkError, Running, clean_environment
from benchmarks.report import load_average
from jobqueue import JobQueue
from jobqueue.schema import SUCCEEDED, job_processes, job_queue

#: The workloads: the job each one enqueues for the closed loop.
WORKLOADS = {"noop": bench_jobs.noop, "io": bench_jobs.io_5ms}
QUEUE = "default"
#: The log events that mean a claim or a write went wrong and was retried, or a job was handed
#: back or rescued: the worker's own record of conflicts (it has no counters of them).
TROUBLE = (
    "claim_failed",
    "job_outcome_write_retry",
    "job_start_not_recorded",
    "job_released",
    "job_rescued",
    "jobs_reconciled",
    "job_write_rejected",
    "process_declared_dead",
)
EVENT = re.compile(r'"event": "([a-z_]+)"')


@dataclass(frozen=True)
class Shape:
    """K supervisors x P processes x T threads."""

    supervisors: int
    processes: int
    threads: int

    @property
    def workers(self) -> int:
        """Worker processes in the whole fleet: the x axis of the curves."""
        return self.supervisors * self.processes

    @property
    def label(self) -> str:
        """``KxPxT``, as the command line and the results spell a fleet."""
        return f"{self.supervisors}x{self.processes}x{self.threads}"

    @classmethod
    def parse(cls, value: str) -> Shape:
        """``"8x2x5"`` -> 8 supervisors x 2 processes x 5 threads."""
        supervisors, processes, threads = (int(part) for part in value.lower().split("x"))
        return cls(supervisors, processes, threads)


@dataclass
class CountingRun(Running):
    """A :class:`~benchmarks.procs.Running` whose drained output is also counted by log event
    (JSON lines: the worker's stderr is a pipe, not a terminal)."""

    events: Counter[str] = field(default_factory=Counter)

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            if (match := EVENT.search(line)) is not None:
                self.events[match.group(1)] += 1


class Fleet:
    """K ``jobrunner work`` commands (not burst: stopped with SIGTERM once the run is over)."""

    def __init__(
        self, database: Database, shape: Shape, env: dict[str, str], prefetch: int | None = None
    ) -> None:
        self.database, self.shape, self.env = database, shape, env
        #: ``--prefetch N`` for every supervisor; None: the automatic default.
        self.prefetch = prefetch
        self.runs: list[CountingRun] = []

    def start(self) -> None:
        """K supervisors at once, as K machines would start theirs."""
        argv = work_command(
            self.database,
            processes=self.shape.processes,
            threads=self.shape.threads,
            burst=False,
        )
        if self.prefetch is not None:
            argv += ["--prefetch", str(self.prefetch)]
        # Running.start builds ``cls(...)``, so these are CountingRuns whatever its annotation.
        self.runs = [
            cast(CountingRun, CountingRun.start(argv, self.env))
            for _ in range(self.shape.supervisors)
        ]

    @property
    def roots(self) -> list[int]:
        """The supervisors' pids, whose process trees are the fleet's CPU."""
        return [run.pid for run in self.runs]

    def check_alive(self) -> None:
        """A supervisor that exits mid-run makes the point an error, never a number."""
        for run in self.runs:
            if run.process.poll() is not None:
                raise BenchmarkError(
                    f"a supervisor exited ({run.process.returncode}) mid-run\n{run.output()}"
                )

    def wait_registered(self, jobqueue: JobQueue, timeout: float = 90.0) -> float:
        """Seconds until every worker process of every supervisor has registered."""
        query = select(func.count()).select_from(job_processes)
        query = query.where(job_processes.c.kind == "worker")
        started = time.perf_counter()
        while True:
            with jobqueue.transaction(read_only=True) as connection:
                if int(connection.execute(query).scalar() or 0) >= self.shape.workers:
                    return time.perf_counter() - started
            self.check_alive()
            if time.perf_counter() - started > timeout:
                raise BenchmarkError(f"fleet {self.shape.label} not up after {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> list[int]:
        """SIGTERM to every supervisor at once (their workers have nothing left to finish),
        then wait for each; their exit codes."""
        for run in self.runs:
            if run.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.pid, signal.SIGTERM)
        return [run.stop() for run in self.runs]

    def events(self) -> Counter[str]:
        """Log events of the whole fleet, start and SIGTERM stop included."""
        total: Counter[str] = Counter()
        for run in self.runs:
            total.update(run.events)
        return total


def prefill(jobqueue: JobQueue, workload: str, jobs: int) -> None:
    """``jobs`` due jobs of the workload, 1,000 per ``enqueue_many`` (not timed)."""
    target = WORKLOADS[workload]
    for offset in range(0, jobs, 1000):
        jobqueue.enqueue_many([target.call() for _ in range(min(1000, jobs - offset))])


def job_checks(jobqueue: JobQueue, jobs: int) -> dict[str, int]:
    """Every job must have succeeded; and how many needed more than one claim (handed back,
    rescued) or had a failed attempt: the database's own count of conflicts."""
    with jobqueue.transaction(read_only=True) as connection:
        count = select(func.count()).select_from(job_queue)
        found = {
            "succeeded": connection.execute(count.where(job_queue.c.status == SUCCEEDED)),
            "claimed_more_than_once": connection.execute(count.where(job_queue.c.attempts > 1)),
            "with_failed_attempts": connection.execute(
                count.where(job_queue.c.failed_attempts > 0)
            ),
        }
        checks = {name: int(result.scalar() or 0) for name, result in found.items()}
    if checks["succeeded"] != jobs:
        raise BenchmarkError(f"{checks['succeeded']} of {jobs} jobs succeeded")
    return checks


@dataclass
class Mark:
    """The moment the done count first reached a threshold."""

    at: float
    done: int
    sample: Sample


def drain(
    probe: ServerProbe, fleet: Fleet, jobqueue: JobQueue, jobs: int, timeout: float
) -> dict[str, Any]:
    """Resume the queue and follow the drain: marks at 10 % and 90 % done (the steady window,
    free of the start and of the tail) and at the end, connections looked at every 250 ms."""
    marks: dict[str, Mark] = {"start": Mark(time.perf_counter(), 0, probe.sample(fleet.roots))}
    jobqueue.admin.resume(QUEUE)
    polls = 0
    while "end" not in marks:
        time.sleep(0.05)
        done, now = probe.succeeded(), time.perf_counter()
        for name, fraction in (("p10", 0.1), ("p90", 0.9), ("end", 1.0)):
            if name not in marks and done >= fraction * jobs:
                marks[name] = Mark(now, done, probe.sample(fleet.roots))
        polls += 1
        if polls % 5 == 0 and "end" not in marks:
            probe.look()
            fleet.check_alive()
        if now - marks["start"].at > timeout:
            raise BenchmarkError(f"{done} of {jobs} jobs done after {timeout:g} s")
    start, p10, p90, end = marks["start"], marks["p10"], marks["p90"], marks["end"]
    window_jobs, window_seconds = p90.done - p10.done, p90.at - p10.at
    return {
        "drain_seconds": end.at - start.at,
        "rate_drain": jobs / (end.at - start.at),
        "window_jobs": window_jobs,
        "window_seconds": window_seconds,
        "rate_steady": window_jobs / window_seconds,
        "steady": costs(p10.sample, p90.sample, window_jobs, window_seconds),
        "whole": costs(start.sample, end.sample, jobs, end.at - start.at),
    }


def describe(backend: str, workload: str, shape: Shape, prefetch: int | None) -> dict[str, Any]:
    """What a result was measured on, spelled out so the JSON reads without this code."""
    return {
        "backend": backend,
        "workload": workload,
        "shape": shape.label,
        "supervisors": shape.supervisors,
        "processes": shape.processes,
        "threads": shape.threads,
        "workers": shape.workers,
        "prefetch": prefetch,
        # MariaDB threads that joined mid-window are left out of "own" (see costs()).
        "own_method": "fresh backends counted on PostgreSQL only",
    }


def closed_loop(
    backend: str,
    workload: str,
    shape: Shape,
    jobs: int,
    *,
    workdir: Path,
    timeout: float,
    prefetch: int | None = None,
) -> dict[str, Any]:
    """One point of the throughput curve, in a database of its own."""
    with fresh_database(backend, workdir) as database, JobQueue(database.url) as jobqueue:
        jobqueue.admin.pause(QUEUE)
        prefill(jobqueue, workload, jobs)
        analyze(jobqueue.engine)
        probe = ServerProbe(database)
        fleet = Fleet(database, shape, clean_environment(), prefetch)
        load_before = load_average()
        try:
            before = probe.counters()
            fleet.start()
            startup = fleet.wait_registered(jobqueue)
            result = drain(probe, fleet, jobqueue, jobs, timeout)
        finally:
            codes = fleet.stop()
            after = probe.counters()
            probe.close()
        if any(codes):
            raise BenchmarkError(f"supervisor exit codes {codes}\n{fleet.runs[0].output()}")
        events = fleet.events()
        result.update(
            describe(backend, workload, shape, prefetch),
            jobs=jobs,
            startup_seconds=startup,
            connections_max=max(probe.connection_counts, default=0),
            connections_looks=probe.connection_counts,
            activity=dict(probe.activity),
            server_counters={k: v - before.get(k, 0) for k, v in after.items()},
            trouble_events={name: events[name] for name in TROUBLE if events[name]},
            jobs_db=job_checks(jobqueue, jobs),
            load=[load_before, load_average()],
        )
        return result
