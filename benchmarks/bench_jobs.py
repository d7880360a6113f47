"""The jobs the benchmarks enqueue, run by ``jobrunner work --app benchmarks.bench_jobs``.

The names are explicit, so the producer (this harness) and the worker agree on them however
the module is imported.
"""

from __future__ import annotations

import os
import threading
import time

from jobqueue import job

#: Where :func:`latency_probe` appends its lines; set in the worker's environment.
LATENCY_FILE_ENV = "JQ_BENCH_LATENCY_FILE"

_append_lock = threading.Lock()


@job(name="bench.noop")
def noop() -> None:
    """Does nothing, so that processing throughput measures the queue and not the job."""


@job(name="bench.latency_probe")
def latency_probe(enqueued_at: float) -> None:
    """Record when this job started next to when it was enqueued (its argument: the job has
    no other way to know). One line per job, ``enqueued_at started_at``, Unix seconds."""
    started_at = time.time()
    with _append_lock, open(os.environ[LATENCY_FILE_ENV], "a") as handle:
        handle.write(f"{enqueued_at!r} {started_at!r}\n")


#: How long :func:`io_5ms` and :func:`latency_probe_io` wait, standing in for a network call.
IO_SECONDS = 0.005


@job(name="bench.io_5ms")
def io_5ms() -> None:
    """Waits 5 ms without using the CPU, like a job that calls another service: the fleet
    benchmark's I/O-bound workload, where threads rather than cores bound a worker's rate."""
    time.sleep(IO_SECONDS)


@job(name="bench.latency_probe_io")
def latency_probe_io(enqueued_at: float) -> None:
    """:func:`latency_probe`'s record (the same file, the same line), then the 5 ms wait of
    :func:`io_5ms`, so open-loop latency is measured on the I/O-bound workload it sizes."""
    latency_probe(enqueued_at)
    time.sleep(IO_SECONDS)
