"""``python -m benchmarks.fleet_producer``: one producer process of the open-loop run.

It enqueues latency probes with single ``enqueue()`` calls (one transaction each, as a web
request enqueues) on a fixed schedule, whatever the workers do: that is what makes the load
open-loop. A producer that falls behind its schedule sends the late calls at once rather than
skipping them, and says how late it was, so a run whose producers could not keep the offered
rate (on a machine whose cores the fleet is also using) shows it instead of reporting a lower
rate under the higher one's name. Its one line of output is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchmarks import bench_jobs
from benchmarks.databases import Database
from benchmarks.ours import default_queue
from benchmarks.results import percentile

PROBES = {"noop": bench_jobs.latency_probe, "io": bench_jobs.latency_probe_io}


def produce(url: str, workload: str, rate: float, count: int, start_at: float) -> dict[str, Any]:
    """``count`` probes, the k-th at ``start_at + k / rate`` (Unix seconds)."""
    probe = PROBES[workload]
    backend = "postgresql" if url.startswith("postgresql") else "mysql"
    with default_queue(Database(backend, url)) as jobqueue:
        jobqueue.verify_schema()  # the engine, a connection and the schema check, untimed
        time.sleep(max(0.0, start_at - time.time()))
        origin = time.perf_counter() - max(0.0, time.time() - start_at)
        lags: list[float] = []
        for k in range(count):
            due = origin + k / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            lags.append(max(0.0, time.perf_counter() - due))
            probe.enqueue(time.time())
        seconds = time.perf_counter() - origin
    return {
        "sent": count,
        "seconds": seconds,
        "rate": count / seconds,
        "lag_p50_ms": 1000 * percentile(lags, 0.5),
        "lag_p99_ms": 1000 * percentile(lags, 0.99),
        "lag_max_ms": 1000 * max(lags),
    }


def main(argv: list[str] | None = None) -> int:
    """Arguments on the command line (no secrets here: the benchmark URLs have none)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet_producer")
    parser.add_argument("--url", required=True)
    parser.add_argument("--workload", choices=sorted(PROBES), required=True)
    parser.add_argument("--rate", type=float, required=True, help="enqueue() calls per second")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start-at", type=float, required=True, help="Unix time of the first")
    args = parser.parse_args(argv)
    result = produce(args.url, args.workload, args.rate, args.count, args.start_at)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
