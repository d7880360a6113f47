"""Which measurements one invocation makes, in what order, and how they become figures.

Runs are interleaved (run 1 of every configuration, then run 2, ...) rather than grouped, so
a burst of background load on this shared machine spreads over the configurations instead of
landing on one of them. Every measurement gets a fresh database.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from benchmarks import claimcost, ours
from benchmarks.databases import Database, fresh_database
from benchmarks.results import Figure, Results, Table, fmt, percentile
from benchmarks.settings import BenchSettings
from jobqueue import JobQueue


@dataclass
class Plan:
    """One configuration to measure ``runs`` times: the figure it feeds and how to take one
    value of it."""

    figure: Figure
    measure: Callable[[], float | list[float]]
    #: For a measurement that yields samples (latency): the figures its summaries feed.
    summaries: tuple[tuple[Figure, Callable[[list[float]], float]], ...] = ()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_plans(plans: list[Plan], runs: int) -> None:
    for run in range(1, runs + 1):
        for plan in plans:
            label = f"{plan.figure.system}: {plan.figure.workload}, {plan.figure.config}"
            say(f"[run {run}/{runs}] {label} ...")
            value = plan.measure()
            if isinstance(value, list):
                for figure, summary in plan.summaries:
                    figure.values.append(summary(value))
                shown = ", ".join(
                    f"{f.config.split(' ')[0]} {fmt(f.values[-1], f.unit)}"
                    for f, _ in plan.summaries
                )
            else:
                plan.figure.values.append(value)
                shown = fmt(value, plan.figure.unit)
            say(f"    {shown}")


def with_database(
    settings: BenchSettings, body: Callable[[Database], float]
) -> Callable[[], float]:
    def measure() -> float:
        with fresh_database(settings.backend, settings.workdir) as database:
            return body(database)

    return measure


def ours_plans(settings: BenchSettings, results: Results) -> list[Plan]:
    plans: list[Plan] = []
    backend = settings.backend
    system = ours.SYSTEM
    if settings.wants("enqueue"):
        plans.append(
            Plan(
                results.add(Figure("enqueue, single", system, "enqueue()", "jobs/s", [])),
                with_database(settings, lambda db: ours.enqueue_single(db, settings.single)),
            )
        )
        if backend == "postgresql":
            plans.append(
                Plan(
                    results.add(
                        Figure(
                            "enqueue, single",
                            system,
                            "enqueue(), prepared_statements=True",
                            "jobs/s",
                            [],
                        )
                    ),
                    with_database(
                        settings,
                        lambda db: ours.enqueue_single(db, settings.single, prepared=True),
                    ),
                )
            )
        if backend == "sqlite":
            plans.append(
                Plan(
                    results.add(
                        Figure(
                            "enqueue, single", system, "enqueue(), synchronous=FULL", "jobs/s", []
                        )
                    ),
                    with_database(
                        settings, lambda db: ours.enqueue_single(db, settings.single, "FULL")
                    ),
                )
            )
        plans.append(
            Plan(
                results.add(
                    Figure(
                        "enqueue, batch",
                        system,
                        f"enqueue_many(), {settings.batch_size:,} per call",
                        "jobs/s",
                        [],
                    )
                ),
                with_database(
                    settings,
                    lambda db: ours.enqueue_batches(db, settings.batch_total, settings.batch_size),
                ),
            )
        )
    if settings.wants("processing"):
        configs: list[tuple[int, ours.Synchronous, bool]] = [
            (1, "NORMAL", False),
            (2, "NORMAL", False),
        ]
        if backend == "sqlite":
            configs += [(1, "FULL", False), (2, "FULL", False)]
        if backend == "postgresql":
            configs.append((1, "NORMAL", True))
        for processes, synchronous, pauses_analyzed in configs:
            config = f"{processes} process{'es' if processes > 1 else ''} x 5 threads"
            if backend == "sqlite":
                config += f", synchronous={synchronous}"
            if pauses_analyzed:
                config += ", job_queue_pauses analyzed (diagnostic)"

            def body(
                db: Database,
                p: int = processes,
                s: ours.Synchronous = synchronous,
                a: bool = pauses_analyzed,
            ) -> float:
                return ours.processing(
                    db,
                    settings.jobs,
                    processes=p,
                    threads=5,
                    synchronous=s,
                    pauses_analyzed=a,
                    timeout=settings.timeout,
                )

            figure = Figure(f"processing {settings.jobs:,} jobs", system, config, "jobs/s", [])
            plans.append(Plan(results.add(figure), with_database(settings, body)))
    if settings.wants("latency"):
        where = f"{settings.latency_probes} jobs, {settings.latency_spacing * 1000:g} ms apart"
        figures = {
            name: results.add(
                Figure("latency enqueue→start", system, f"{name} ({where})", "ms", [], False)
            )
            for name in ("p50", "p99", "max")
        }

        def latency_measure() -> list[float]:
            with fresh_database(backend, settings.workdir) as database:
                return ours.latency(
                    database,
                    settings.latency_probes,
                    settings.latency_spacing,
                    workdir=settings.workdir,
                    timeout=settings.timeout,
                )

        plans.append(
            Plan(
                figures["p50"],
                latency_measure,
                (
                    (figures["p50"], lambda v: percentile(v, 0.5)),
                    (figures["p99"], lambda v: percentile(v, 0.99)),
                    (figures["max"], max),
                ),
            )
        )
    return plans


def claim_cost(settings: BenchSettings, results: Results) -> None:
    """Cases (a) and (b), each in its own database built once and measured ``runs`` times
    (the due jobs are enqueued afresh for each run and deleted after it)."""
    runs: dict[str, list[claimcost.ClaimRun]] = {"a": [], "b": []}
    plan_text = ""
    future = settings.claim_rows // 10
    labels = {
        "a": f"(a) {settings.claim_due:,} due jobs only",
        "b": f"(b) {settings.claim_due:,} due + {settings.claim_rows:,} succeeded + "
        f"{future:,} future",
    }
    for case in ("a", "b"):
        with fresh_database(settings.backend, settings.workdir) as database:
            jobqueue = JobQueue(database.url)
            try:
                claimcost.register(jobqueue)
                if case == "b":
                    say(f"claim cost: filling {settings.claim_rows + future:,} rows ...")
                    started = time.perf_counter()
                    claimcost.build_table(jobqueue, settings.claim_rows)
                    say(f"    filled in {time.perf_counter() - started:.1f} s")
                for run in range(1, settings.runs + 1):
                    say(f"[run {run}/{settings.runs}] jobqueue: claim cost {labels[case]} ...")
                    result = claimcost.measure(jobqueue, settings.claim_due, settings.claim_batch)
                    runs[case].append(result)
                    say(
                        f"    claim median {result.median_claim_ms:.3f} ms, "
                        f"p99 {result.p99_claim_ms:.3f} ms, complete median "
                        f"{result.median_complete_ms:.3f} ms, {fmt(result.jobs_per_second)} jobs/s"
                    )
                if case == "b":
                    plan_text = claimcost.explain_claim(
                        jobqueue, settings.claim_due, settings.claim_batch
                    )
            finally:
                jobqueue.close()
    summaries: tuple[tuple[str, str, bool, Callable[[claimcost.ClaimRun], float]], ...] = (
        ("claim median", "ms", False, lambda r: r.median_claim_ms),
        ("claim p99", "ms", False, lambda r: r.p99_claim_ms),
        ("complete median", "ms", False, lambda r: r.median_complete_ms),
        ("claim + complete", "jobs/s", True, lambda r: r.jobs_per_second),
    )
    for case in ("a", "b"):
        for name, unit, higher, value in summaries:
            figure = Figure(f"claim cost: {name}", ours.SYSTEM, labels[case], unit, [], higher)
            figure.values = [value(r) for r in runs[case]]
            results.add(figure)
    a_claim = statistics.median(r.median_claim_ms for r in runs["a"])
    b_claim = statistics.median(r.median_claim_ms for r in runs["b"])
    a_rate = statistics.median(r.jobs_per_second for r in runs["a"])
    b_rate = statistics.median(r.jobs_per_second for r in runs["b"])
    ratio = b_claim / a_claim
    results.tables.append(
        Table(
            "Claim cost as the table grows",
            ["", "(a)", "(b)", "b/a"],
            [
                ["median claim, ms", f"{a_claim:.3f}", f"{b_claim:.3f}", f"{ratio:.2f}"],
                [
                    "claim + complete, jobs/s",
                    fmt(a_rate),
                    fmt(b_rate),
                    f"{a_rate / b_rate:.2f} (slowdown)",
                ],
            ],
            note=f"Target b/a <= 1.5 for the claim time: {'met' if ratio <= 1.5 else 'MISSED'} "
            f"({ratio:.2f}). Batches of {settings.claim_batch}; claim time is the claim "
            "statement(s) alone, the rate includes completing and committing. "
            f"{labels['a']}; {labels['b']}.",
        )
    )
    results.texts.append((f"Query plan of the claim on table (b) ({settings.backend})", plan_text))


def memory(settings: BenchSettings, results: Results) -> None:
    say(f"[run 1/1] jobqueue: memory over {settings.memory_jobs:,} jobs ...")
    with fresh_database(settings.backend, settings.workdir) as database:
        table = ours.memory(database, settings.memory_jobs, timeout=settings.timeout)
    say("    " + table.note)
    results.tables.append(table)


def run(settings: BenchSettings, results: Results) -> None:
    """Every requested workload, ours and (with ``--peers``) the peers'."""
    plans = ours_plans(settings, results)
    with ExitStack() as cleanup:
        if settings.peers:
            from benchmarks import peer_plans

            if settings.backend == "sqlite":
                plans += peer_plans.huey_plans(settings, results, cleanup)
            elif settings.backend == "postgresql":
                plans += peer_plans.pg_plans(settings, results)
            else:
                say("--peers: no peer runs on MariaDB/MySQL; only jobqueue is measured")
        run_plans(plans, settings.runs)
    if settings.wants("claim"):
        claim_cost(settings, results)
    if settings.wants("memory"):
        memory(settings, results)
