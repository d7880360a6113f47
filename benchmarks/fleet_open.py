"""The open-loop run: producers enqueue at a fixed rate, a fraction of the fleet's measured
closed-loop capacity, and every job's enqueue-to-start time is recorded.

The mechanism is the latency workload's of :mod:`benchmarks.ours`: each probe carries the
``time.time()`` of its enqueue as its argument and appends it, with the time it started, to a
file named in the workers' environment. All the fleet's processes append to the one file
(``O_APPEND``, one short line per write). The producers are separate processes
(:mod:`benchmarks.fleet_producer`), each a share of the rate, offset so their calls interleave.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import bench_jobs
from benchmarks.databases import fresh_database
from benchmarks.fleet_run import Fleet, Shape, closed_loop
from benchmarks.procs import BenchmarkError, Running, clean_environment
from benchmarks.report import load_average
from benchmarks.results import percentile
from jobqueue import JobQueue

#: Probes started in the first second are left out: the fleet's idle poll is then still
#: backed off from the wait before the producers began.
WARMUP_SECONDS = 1.0


def _producers(
    url: str, workload: str, rate: float, seconds: float, producers: int
) -> list[Running]:
    share = rate / producers
    count = max(1, round(share * seconds))
    start_at = time.time() + 3.0 + 0.5 * producers  # for each to import and connect
    argv = [sys.executable, "-m", "benchmarks.fleet_producer", "--url", url]
    argv += ["--workload", workload, "--rate", f"{share:.3f}", "--count", str(count)]
    return [
        Running.start([*argv, "--start-at", f"{start_at + i / rate:.6f}"], clean_environment())
        for i in range(producers)
    ]


def _producer_reports(runs: list[Running], timeout: float) -> list[dict[str, Any]]:
    reports = []
    for run in runs:
        code = run.wait(timeout)
        if code != 0:
            raise BenchmarkError(f"a producer exited with {code}\n{run.output()}")
        reports.append(json.loads(run.tail[-1]))
    return reports


def _wait_for_lines(record: Path, expected: int, fleet: Fleet, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines := record.read_text().splitlines()) < expected:
        fleet.check_alive()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{len(lines)} of {expected} probes started in {timeout:g} s")
        time.sleep(0.1)
    return lines


def summarize(lines: list[str]) -> dict[str, float]:
    """Enqueue-to-start percentiles in ms, the first second's probes left out."""
    pairs = sorted((float(a), float(b)) for a, b in (line.split() for line in lines))
    first = pairs[0][0]
    latencies = [1000 * (b - a) for a, b in pairs if a - first >= WARMUP_SECONDS]
    third = max(1, len(latencies) // 3)
    return {
        "samples": len(latencies),
        # A p50 that grows from the first third of the run to the last: the queue was
        # growing, the offered rate above what the fleet could serve.
        "p50_first_third_ms": percentile(latencies[:third], 0.5),
        "p50_last_third_ms": percentile(latencies[-third:], 0.5),
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "p999_ms": percentile(latencies, 0.999),
        "max_ms": max(latencies),
    }


def open_loop(
    backend: str,
    workload: str,
    shape: Shape,
    rate: float,
    *,
    seconds: float,
    producers: int,
    workdir: Path,
    timeout: float,
    prefetch: int | None = None,
) -> dict[str, Any]:
    """One offered rate, in a database of its own, against a fleet started beforehand."""
    record = workdir / f"fleet-latency-{uuid.uuid4().hex[:8]}.txt"
    record.write_text("")
    env = clean_environment({bench_jobs.LATENCY_FILE_ENV: str(record)})
    with fresh_database(backend, workdir) as database, JobQueue(database.url) as jobqueue:
        fleet = Fleet(database, shape, env, prefetch)
        load_before = load_average()
        try:
            fleet.start()
            fleet.wait_registered(jobqueue)
            time.sleep(1.0)  # the start-up's CPU spent, the workers idle
            runs = _producers(database.url, workload, rate, seconds, producers)
            reports = _producer_reports(runs, timeout)
            lines = _wait_for_lines(record, sum(r["sent"] for r in reports), fleet, timeout)
        finally:
            codes = fleet.stop()
        if any(codes):
            raise BenchmarkError(f"supervisor exit codes {codes}\n{fleet.runs[0].output()}")
    record.unlink()
    return {
        "backend": backend,
        "workload": workload,
        "shape": shape.label,
        "prefetch": prefetch,
        "offered_rate": rate,
        "achieved_rate": sum(r["rate"] for r in reports),
        "producers": reports,
        "latency": summarize(lines),
        "load": [load_before, load_average()],
    }


def latency_runs(
    backend: str,
    workload: str,
    shape: Shape,
    fractions: list[float],
    *,
    capacity_jobs: int,
    seconds: float,
    producers: int,
    workdir: Path,
    timeout: float,
    prefetch: int | None = None,
) -> dict[str, Any]:
    """The fleet's closed-loop capacity on this workload, then one open-loop run at each
    fraction of it."""
    capacity = closed_loop(
        backend,
        workload,
        shape,
        capacity_jobs,
        workdir=workdir,
        timeout=timeout,
        prefetch=prefetch,
    )
    runs = []
    for fraction in fractions:
        rate = fraction * capacity["rate_steady"]
        print(f"  open loop {shape.label} {workload} at {fraction:.0%}: {rate:,.0f}/s", flush=True)
        run = open_loop(
            backend,
            workload,
            shape,
            rate,
            seconds=seconds,
            producers=producers,
            workdir=workdir,
            timeout=timeout,
            prefetch=prefetch,
        )
        run["fraction"] = fraction
        runs.append(run)
        print(f"    {json.dumps(run['latency'])}", flush=True)
    return {"prefetch": prefetch, "capacity": capacity, "runs": runs}


def latency_list(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A results document's latency measurements as a list (one per sitting and fleet
    configuration); the first sittings stored one measurement, not a list."""
    latency = document.get("latency", [])
    return [latency] if isinstance(latency, dict) else list(latency)
