"""How many database connections a supervisor and each of its worker processes hold once
settled: the capacity model's "connections per worker process".

The closed-loop runs count connections too, but they last seconds, and some connections are
opened only at the first heartbeat or maintenance pass (every 5 s), so their counts are lower
bounds. Here an idle fleet is left for ``settle`` seconds, past two heartbeat intervals, then
counted; two fleets, 1 x 1 and 1 x 3, give the supervisor's share and each worker's as the
solution of two equations.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.databases import fresh_database
from benchmarks.fleet_run import Fleet, Shape
from benchmarks.fleet_server import ServerProbe
from benchmarks.procs import BenchmarkError, clean_environment
from jobqueue import JobQueue


def settled_connections(backend: str, shape: Shape, *, settle: float, workdir: Path) -> int:
    """The most connections seen in three looks at an idle fleet after ``settle`` seconds."""
    with fresh_database(backend, workdir) as database, JobQueue(database.url) as jobqueue:
        probe = ServerProbe(database)
        fleet = Fleet(database, shape, clean_environment())
        try:
            fleet.start()
            fleet.wait_registered(jobqueue)
            time.sleep(settle)
            for _ in range(3):
                probe.look()
                time.sleep(0.5)
            fleet.check_alive()
        finally:
            codes = fleet.stop()
            probe.close()
        if any(codes):
            raise BenchmarkError(f"supervisor exit codes {codes}\n{fleet.runs[0].output()}")
        return max(probe.connection_counts)


def census(backend: str, *, settle: float, workdir: Path) -> dict[str, Any]:
    """Connections per supervisor and per worker process, from two settled fleets."""
    one = settled_connections(backend, Shape(1, 1, 5), settle=settle, workdir=workdir)
    three = settled_connections(backend, Shape(1, 3, 5), settle=settle, workdir=workdir)
    per_worker = (three - one) / 2
    return {
        "settle_seconds": settle,
        "fleet_1x1x5": one,
        "fleet_1x3x5": three,
        "per_worker_process": per_worker,
        "per_supervisor": one - per_worker,
    }
