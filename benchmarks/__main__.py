"""``python -m benchmarks``: run the benchmarks on one backend, print the results, and update
that backend's section of docs/performance.md."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import report
from benchmarks.databases import BACKENDS, server_description
from benchmarks.procs import REPO, BenchmarkError
from benchmarks.results import Results
from benchmarks.runner import run
from benchmarks.settings import WORKLOADS, BenchSettings


def _workloads(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(WORKLOADS)}"
        )
    return names


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    defaults = BenchSettings(backend="sqlite", workdir=Path())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark jobqueue (and with --peers, comparable libraries) on one "
        "backend; print the results and update that backend's section of the output file.",
    )
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run the peers: Huey on sqlite, procrastinate and PgQueuer on postgresql",
    )
    parser.add_argument(
        "--jobs", type=_positive, default=defaults.jobs, help="jobs per processing run"
    )
    parser.add_argument("--runs", type=_positive, default=defaults.runs, help="runs per figure")
    parser.add_argument(
        "--only",
        type=_workloads,
        default=WORKLOADS,
        metavar="WORKLOAD,...",
        help=f"workloads to run (default all: {','.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO / "docs" / "performance.md",
        help="the Markdown file whose backend section is replaced (default docs/performance.md)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the results only, write no file"
    )
    parser.add_argument(
        "--single", type=_positive, default=defaults.single, help="enqueue() calls per run"
    )
    parser.add_argument(
        "--batch-total",
        type=_positive,
        default=defaults.batch_total,
        help="jobs per enqueue_many() run (in batches of 1,000)",
    )
    parser.add_argument(
        "--claim-rows",
        type=_positive,
        default=defaults.claim_rows,
        help="succeeded rows in the big claim-cost table (future rows: a tenth of it)",
    )
    parser.add_argument(
        "--claim-batch",
        type=_positive,
        default=defaults.claim_batch,
        help="jobs per claim in the claim-cost loop (default 10: 5 threads + the smallest "
        "automatic prefetch)",
    )
    parser.add_argument(
        "--memory-jobs", type=_positive, default=defaults.memory_jobs, help="jobs in the memory run"
    )
    parser.add_argument(
        "--latency-probes",
        type=_positive,
        default=defaults.latency_probes,
        help="jobs enqueued one at a time in the latency run",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=defaults.timeout,
        help="seconds any one run may take before it is an error",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where SQLite files and side files go (default: a new temporary folder)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="jq_bench_", dir=args.workdir))
    settings = BenchSettings(
        backend=args.backend,
        workdir=workdir,
        runs=args.runs,
        jobs=args.jobs,
        single=args.single,
        batch_total=args.batch_total,
        claim_rows=args.claim_rows,
        claim_batch=args.claim_batch,
        memory_jobs=args.memory_jobs,
        latency_probes=args.latency_probes,
        timeout=args.timeout,
        peers=args.peers,
        only=args.only,
    )
    results = Results(args.backend)
    started = report.now()
    load_before = report.load_average()
    try:
        context = report.machine(args.backend, server_description(args.backend), workdir)
        run(settings, results)
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    loads = (load_before, report.load_average())
    print(report.terminal(results))
    if not args.no_write:
        text = report.section(
            results,
            command=report.command_line(),
            context=context,
            started=started,
            loads=loads,
        )
        report.update_document(args.output, args.backend, text)
        print(f"\nupdated the {args.backend} section of {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
