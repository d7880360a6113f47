"""The tables of docs/scale.md, printed as Markdown from ``benchmarks/results/fleet-*.json``:
``python -m benchmarks.fleet --tables``.

Printed rather than spliced into the doc, because the doc's prose reads the tables and is
written by a person; printing them from the stored results keeps every figure in the doc the
one the run measured.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.fleet_open import latency_list
from benchmarks.fleet_plot import TITLES, load


def _median(points: list[dict[str, Any]], key: str) -> float:
    values = []
    for point in points:
        value: Any = point
        for part in key.split("."):
            value = value[part]
        values.append(float(value))
    return statistics.median(values)


def _spread(points: list[dict[str, Any]], key: str) -> str:
    values = sorted(float(point[key]) for point in points)
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:,.0f}"
    return f"{median:,.0f} ({values[0]:,.0f}-{values[-1]:,.0f})"


def _own(points: list[dict[str, Any]]) -> str:
    """The run's own connections' CPU per job, from the runs that measured it soundly: on
    MariaDB the first sitting counted a cached thread's earlier life when a connection
    joined mid-window, fixed since (``own_method``); those runs are left out."""
    sound = [p for p in points if p["backend"] == "postgresql" or "own_method" in p]
    if not sound:
        return "n/a"
    return f"{_median(sound, 'steady.db_own_cpu_s_per_1k'):.3f}"


def _by_shape(document: dict[str, Any], workload: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for point in document.get("closed", []):
        if point["workload"] == workload:
            found.setdefault(point["shape"], []).append(point)
    return dict(sorted(found.items(), key=lambda item: (item[1][0]["workers"], item[0])))


def _trouble(points: list[dict[str, Any]]) -> str:
    """Conflicts summed over the runs: the worker's retry events, and the server's own
    counters (PostgreSQL: deadlocks in this database; MariaDB: InnoDB row lock waits and
    deadlocks, server-wide)."""
    events: dict[str, int] = {}
    counters: dict[str, int] = {}
    for point in points:
        for name, count in point["trouble_events"].items():
            events[name] = events.get(name, 0) + count
        for name in ("deadlocks", "Innodb_deadlocks", "Innodb_row_lock_waits"):
            if name in point["server_counters"]:
                counters[name] = counters.get(name, 0) + point["server_counters"][name]
    rescued = sum(point["jobs_db"]["claimed_more_than_once"] for point in points)
    parts = [f"{name} {count}" for name, count in {**events, **counters}.items() if count]
    parts.append(f"jobs claimed twice {rescued}")
    return ", ".join(parts)


HEADER = (
    "| fleet KxPxT | worker procs | runs | jobs/s steady (range) | jobs/s whole drain | "
    "DB CPU ms/job: server / own | fleet CPU ms/job | cores busy: DB / fleet / machine | "
    "connections | conflicts (summed over runs) |"
)


def closed_table(document: dict[str, Any], workload: str) -> Iterator[str]:
    """One row per fleet shape: the medians over its runs, the rate's range beside it."""
    yield HEADER
    yield "|" + "---|" * 10
    for shape, points in _by_shape(document, workload).items():
        yield (
            f"| {shape} | {points[0]['workers']} | {len(points)} | "
            f"{_spread(points, 'rate_steady')} | {_median(points, 'rate_drain'):,.0f} | "
            f"{_median(points, 'steady.db_cpu_s_per_1k'):.3f} / "
            f"{_own(points)} | "
            f"{_median(points, 'steady.fleet_cpu_s_per_1k'):.3f} | "
            f"{_median(points, 'steady.db_cores'):.2f} / "
            f"{_median(points, 'steady.fleet_cores'):.2f} / "
            f"{_median(points, 'steady.machine_cores_busy'):.2f} | "
            f"{max(p['connections_max'] for p in points)} | {_trouble(points)} |"
        )


def latency_table(documents: dict[str, dict[str, Any]]) -> Iterator[str]:
    """One row per offered rate, with the producers' lag that says whether it was kept."""
    yield (
        "| database | fleet | capacity jobs/s (closed loop) | offered | achieved | samples | "
        "p50 ms | p99 ms | p99.9 ms | max ms | p50 first third -> last third | "
        "producer lag p99 ms |"
    )
    yield "|" + "---|" * 12
    for backend, document in documents.items():
        for latency in latency_list(document):
            yield from _latency_rows(backend, latency)


def _latency_rows(backend: str, latency: dict[str, Any]) -> Iterator[str]:
    capacity = latency["capacity"]["rate_steady"]
    prefetch = "auto" if latency.get("prefetch") is None else str(latency["prefetch"])
    for run in latency["runs"]:
        numbers = run["latency"]
        lag = max(p["lag_p99_ms"] for p in run["producers"])
        yield (
            f"| {TITLES[backend]} | {run['shape']} {run['workload']}, prefetch {prefetch} | "
            f"{capacity:,.0f} | "
            f"{run['fraction']:.0%} = {run['offered_rate']:,.0f}/s | "
            f"{run['achieved_rate']:,.0f}/s | {numbers['samples']:,} | "
            f"{numbers['p50_ms']:.1f} | {numbers['p99_ms']:.1f} | "
            f"{numbers['p999_ms']:.1f} | {numbers['max_ms']:.1f} | "
            f"{numbers['p50_first_third_ms']:.1f} -> {numbers['p50_last_third_ms']:.1f} | "
            f"{lag:.0f} |"
        )


def tables(results: Path) -> str:
    """Every table of docs/scale.md, in the doc's order."""
    documents = load(results)
    lines: list[str] = []
    for backend, document in documents.items():
        for workload in ("noop", "io"):
            lines += ["", f"### {TITLES[backend]}, {workload}", ""]
            lines += closed_table(document, workload)
    lines += ["", "### Open-loop latency", ""]
    lines += latency_table(documents)
    return "\n".join(lines)
