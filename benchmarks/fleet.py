"""``python -m benchmarks.fleet``: the fleet benchmark of issue #19 (part 1), behind docs/scale.md.

K supervisors (``jobrunner work`` commands standing in for K machines) x P processes x T
threads against one PostgreSQL or MariaDB database: closed-loop throughput as the fleet grows,
what each job costs the database server in CPU, the connections the fleet holds, and, for one
fleet, enqueue-to-start latency under an open-loop load at fractions of its capacity. The
results go to ``benchmarks/results/fleet-<backend>.json``; ``--plot`` draws docs/img/scale-*.png
from the files there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.databases import server_description
from benchmarks.fleet_open import latency_list, latency_runs
from benchmarks.fleet_run import WORKLOADS, Shape, closed_loop
from benchmarks.procs import REPO, BenchmarkError

RESULTS = REPO / "benchmarks" / "results"
#: What one invocation (a sitting) records about itself.
SITTING_KEYS = ("command", "started", "machine", "load_before", "load_after", "benchmark_seconds")
#: Fleets from one machine's worth to eight, each measured as 1 and 2 processes per
#: supervisor; on MariaDB also eight supervisors of four processes (on PostgreSQL that fleet
#: would hold about as many connections as the server's max_connections = 100 allows).
SHAPES = {
    "postgresql": "1x1x5,1x2x5,2x1x5,2x2x5,4x1x5,4x2x5,8x1x5,8x2x5",
    "mysql": "1x1x5,1x2x5,2x1x5,2x2x5,4x1x5,4x2x5,8x1x5,8x2x5,8x4x5",
}


def _shapes(value: str) -> list[Shape]:
    try:
        return [Shape.parse(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not KxPxT[,KxPxT...]: {value!r}") from None


def _fractions(value: str) -> list[float]:
    return [float(part) for part in value.split(",")]


def build_parser() -> argparse.ArgumentParser:
    """The options; sizes default to what fits the benchmark budget of a 2-core machine."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--backend", choices=("postgresql", "mysql"))
    parser.add_argument("--plot", action="store_true", help="draw the PNGs from the results")
    parser.add_argument(
        "--tables", action="store_true", help="print the results as docs/scale.md's tables"
    )
    parser.add_argument(
        "--only", default="closed,open", help="of closed, open, connections (default both loops)"
    )
    parser.add_argument("--shapes", type=_shapes, help="KxPxT,... (default: per backend)")
    parser.add_argument("--workloads", default="noop,io", help=f"of {','.join(WORKLOADS)}")
    parser.add_argument("--jobs", type=int, default=20_000, help="no-op backlog per point")
    parser.add_argument("--io-jobs", type=int, default=10_000, help="5 ms backlog per point")
    parser.add_argument("--runs", type=int, default=1, help="runs of every closed-loop point")
    parser.add_argument("--latency-shape", type=Shape.parse, default=Shape(2, 1, 1))
    parser.add_argument("--latency-workload", choices=sorted(WORKLOADS), default="io")
    parser.add_argument("--latency-fractions", type=_fractions, default=[0.5, 0.9])
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument(
        "--latency-prefetch",
        type=int,
        help="--prefetch N for the latency fleet (default: the automatic prefetch)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="longest one run may take")
    parser.add_argument("--output", type=Path, help="default benchmarks/results/fleet-B.json")
    parser.add_argument(
        "--append",
        action="store_true",
        help="add this invocation's closed-loop runs to the output file's (numbered after "
        "them) and latency measurements to the file's, instead of replacing the file",
    )
    return parser


def closed_points(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """Every closed-loop point, runs interleaved (run 1 of every point, then run 2), so a
    burst of other load on this shared machine spreads over the points."""
    shapes = args.shapes or _shapes(SHAPES[args.backend])
    points = []
    for run in range(1, args.runs + 1):
        for workload in args.workloads.split(","):
            jobs = args.jobs if workload == "noop" else args.io_jobs
            for shape in shapes:
                point = closed_loop(
                    args.backend, workload, shape, jobs, workdir=workdir, timeout=args.timeout
                )
                point["run"] = run
                points.append(point)
                print(
                    f"[run {run}] {args.backend} {workload} {shape.label}: "
                    f"{point['rate_steady']:,.0f} jobs/s steady, "
                    f"{point['steady']['db_cpu_s_per_1k']:.3f} DB CPU-s/1k, "
                    f"{point['connections_max']} connections",
                    flush=True,
                )
    return points


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One sitting: what was asked for, with where and when it ran, as one JSON document."""
    workdir = Path(tempfile.mkdtemp(prefix="jq_fleet_"))
    document: dict[str, Any] = {
        "backend": args.backend,
        "command": "python -m benchmarks.fleet " + " ".join(sys.argv[1:]),
        "started": report.now().isoformat(timespec="seconds"),
        "machine": report.machine(args.backend, server_description(args.backend), workdir),
        "load_before": report.load_average(),
    }
    began = time.perf_counter()
    try:
        if "closed" in args.only:
            document["closed"] = closed_points(args, workdir)
        if "open" in args.only:
            document["latency"] = [
                latency_runs(
                    args.backend,
                    args.latency_workload,
                    args.latency_shape,
                    args.latency_fractions,
                    capacity_jobs=args.io_jobs if args.latency_workload == "io" else args.jobs,
                    seconds=args.latency_seconds,
                    producers=args.producers,
                    workdir=workdir,
                    timeout=args.timeout,
                    prefetch=args.latency_prefetch,
                )
            ]
        if "connections" in args.only:
            from benchmarks.fleet_census import census

            document["connections"] = census(args.backend, settle=12.0, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    document["load_after"] = report.load_average()
    document["benchmark_seconds"] = time.perf_counter() - began
    return document


def merged(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``earlier``'s results with ``later``'s added: more runs of the closed-loop points
    (so a figure's spread grows across sittings), the latency measurements of both,
    and every sitting's command, start time, load and machine kept in ``sittings``."""
    sittings = earlier.pop("sittings", None) or [
        {k: earlier[k] for k in SITTING_KEYS if k in earlier}
    ]
    offset = max((point["run"] for point in earlier.get("closed", [])), default=0)
    for point in later.get("closed", []):
        point["run"] += offset
    result = {k: v for k, v in earlier.items() if k not in SITTING_KEYS}
    result["closed"] = earlier.get("closed", []) + later.get("closed", [])
    result["latency"] = latency_list(earlier) + latency_list(later)
    if "connections" in later:
        result["connections"] = later["connections"]
    result["sittings"] = [*sittings, {k: later[k] for k in SITTING_KEYS if k in later}]
    result["benchmark_seconds"] = sum(s.get("benchmark_seconds", 0) for s in result["sittings"])
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure and write the results, or (``--plot``, ``--tables``) present stored ones."""
    args = build_parser().parse_args(argv)
    if args.plot:
        from benchmarks.fleet_plot import plot_all

        for path in plot_all(RESULTS, REPO / "docs" / "img"):
            print(f"wrote {path}")
        return 0
    if args.tables:
        from benchmarks.fleet_report import tables

        print(tables(RESULTS))
        return 0
    if args.backend is None:
        print("--backend is required (or --plot)", file=sys.stderr)
        return 2
    try:
        document = measure(args)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    output = args.output or RESULTS / f"fleet-{args.backend}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.append and output.exists():
        document = merged(json.loads(output.read_text()), document)
    output.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {output} ({document['benchmark_seconds']:.0f} s of benchmark)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
