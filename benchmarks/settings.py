"""The sizes and repetitions of one benchmark invocation (command-line options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WORKLOADS = ("enqueue", "processing", "latency", "claim", "memory")


@dataclass
class BenchSettings:
    backend: str
    workdir: Path
    runs: int = 3
    #: Pre-enqueued no-op jobs drained by each processing run.
    jobs: int = 20_000
    #: enqueue(): calls per run (after a short warm-up that is not timed).
    single: int = 5_000
    #: enqueue_many(): jobs per run, in batches of ``batch_size``.
    batch_total: int = 100_000
    batch_size: int = 1_000
    latency_probes: int = 200
    latency_spacing: float = 0.020
    #: Finished rows in the big claim-cost table; the future-scheduled rows are a tenth of it.
    claim_rows: int = 1_000_000
    claim_due: int = 10_000
    #: Jobs per claim: a worker's 5 threads + its smallest automatic prefetch (5), which it
    #: uses once jobs take 50 ms or more.
    claim_batch: int = 10
    memory_jobs: int = 100_000
    #: Longest any single run may take before it is an error.
    timeout: float = 900.0
    peers: bool = False
    only: tuple[str, ...] = WORKLOADS

    def wants(self, workload: str) -> bool:
        return workload in self.only
