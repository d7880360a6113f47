"""The pictures of docs/scale.md, drawn from ``benchmarks/results/fleet-*.json`` with
matplotlib (the ``bench`` extra): ``python -m benchmarks.fleet --plot``.

Drawn from the stored results rather than during a run, so the doc's pictures can be redrawn
(or restyled) without spending the benchmark's minutes again, and always match the JSON the
doc's tables quote.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib

from benchmarks.fleet_open import latency_list

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # after the backend is chosen

TITLES = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}
WORKLOAD_LABELS = {"noop": "no-op jobs", "io": "5 ms I/O jobs"}


def load(results: Path) -> dict[str, dict[str, Any]]:
    """Each backend's stored results, PostgreSQL first."""
    found = {}
    for backend in TITLES:
        path = results / f"fleet-{backend}.json"
        if path.exists():
            found[backend] = json.loads(path.read_text())
    return found


def _series(
    document: dict[str, Any], workload: str, key: str, processes: int | None = None
) -> list[tuple[int, str, float]]:
    """(worker processes, shape, median of ``key`` over the runs) per shape, by size; only
    the shapes of ``processes`` per supervisor if given."""
    return [
        (w, shape, statistics.median(v))
        for w, shape, v in _runs(document, workload, key, processes)
    ]


def _runs(
    document: dict[str, Any], workload: str, key: str, processes: int | None = None
) -> list[tuple[int, str, list[float]]]:
    """(worker processes, shape, ``key`` of every run) per shape, by size. A MariaDB run's
    own-connection CPU counts only if it was measured soundly (see fleet_report._own)."""
    by_shape: dict[str, list[dict[str, Any]]] = {}
    for point in document.get("closed", []):
        if point["workload"] != workload or processes not in (None, point["processes"]):
            continue
        if "own" in key and point["backend"] == "mysql" and "own_method" not in point:
            continue
        by_shape.setdefault(point["shape"], []).append(point)
    rows = [
        (points[0]["workers"], shape, [_get(point, key) for point in points])
        for shape, points in by_shape.items()
    ]
    return sorted(rows, key=lambda row: (row[0], row[1]))


def _get(point: dict[str, Any], key: str) -> float:
    value: Any = point
    for part in key.split("."):
        value = value[part]
    return float(value)


def _axes(count: int) -> tuple[Any, list[Any]]:
    figure, axes = plt.subplots(1, count, figsize=(6.2 * count, 4.4), squeeze=False)
    return figure, list(axes[0])


def _log2_x(axis: Any, label: str) -> None:
    axis.set_xscale("log", base=2)
    axis.set_xticks([1, 2, 4, 8, 16, 32], ["1", "2", "4", "8", "16", "32"])
    axis.set_xlabel(label)
    axis.grid(True, alpha=0.3)


def throughput(documents: dict[str, dict[str, Any]], path: Path) -> Path:
    """Steady jobs/s against worker processes: one line per workload and processes per
    supervisor (P), so that more supervisors (machines) and more processes per supervisor
    can be told apart; each point labelled with its K x P x T."""
    figure, axes = _axes(len(documents))
    for axis, (backend, document) in zip(axes, documents.items(), strict=True):
        for (workload, label), color in zip(WORKLOAD_LABELS.items(), ("C0", "C1"), strict=True):
            for processes, style in ((1, "-"), (2, "--"), (4, ":")):
                runs = _runs(document, workload, "rate_steady", processes)
                if not runs:
                    continue
                xs = [r[0] for r in runs]
                ys = [statistics.median(r[2]) for r in runs]
                spread = [[y - min(r[2]) for y, r in zip(ys, runs, strict=True)]]
                spread.append([max(r[2]) - y for y, r in zip(ys, runs, strict=True)])
                axis.errorbar(
                    xs, ys, yerr=spread, color=color, linestyle=style, marker="o", capsize=3,
                    label=f"{label}, P = {processes}",
                )  # fmt: skip
                for x, shape, y in zip(xs, [r[1] for r in runs], ys, strict=True):
                    axis.annotate(
                        shape, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
                    )
        _log2_x(axis, "worker processes = K supervisors x P processes (T = 5 threads)")
        axis.set_ylabel("jobs/s, 10-90 % of the backlog (median; bars: range of runs)")
        axis.set_ylim(bottom=0)
        axis.set_title(f"{TITLES[backend]}: closed-loop throughput, one 2-core machine")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def cpu_cost(documents: dict[str, dict[str, Any]], path: Path) -> Path:
    """CPU milliseconds per job: the database server (all of it, and this run's connections
    alone) and the fleet's own processes."""
    figure, axes = _axes(len(documents))
    lines = (
        ("steady.db_cpu_s_per_1k", "DB server, all processes", "-"),
        ("steady.db_own_cpu_s_per_1k", "DB, this run's connections", ":"),
        ("steady.fleet_cpu_s_per_1k", "fleet (supervisors + workers)", "--"),
    )
    for axis, (backend, document) in zip(axes, documents.items(), strict=True):
        for workload, label in WORKLOAD_LABELS.items():
            for key, what, style in lines:
                by_size: dict[int, list[float]] = {}
                for workers, _, value in _series(document, workload, key):
                    by_size.setdefault(workers, []).append(value)
                if by_size:
                    # CPU-s per 1,000 jobs is CPU-ms per job; shapes of one size: their median.
                    axis.plot(
                        list(by_size),
                        [statistics.median(values) for values in by_size.values()],
                        linestyle=style,
                        marker="o" if workload == "noop" else "s",
                        label=f"{what}, {label}",
                    )
        _log2_x(axis, "worker processes (median of the fleets of that size)")
        axis.set_ylabel("CPU ms per job, 10-90 % of the backlog")
        axis.set_ylim(bottom=0)
        axis.set_title(f"{TITLES[backend]}: CPU per job")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def latency(documents: dict[str, dict[str, Any]], path: Path) -> Path:
    """Enqueue-to-start p50 / p99 / p99.9 at each offered fraction of capacity."""
    figure, axis = plt.subplots(figsize=(10, 4.6))
    labels, groups = [], []
    for backend, document in documents.items():
        for measurement in latency_list(document):
            prefetch = measurement.get("prefetch")
            for run in measurement["runs"]:
                labels.append(
                    f"{TITLES[backend]}\nprefetch {'auto' if prefetch is None else prefetch}\n"
                    f"{run['fraction']:.0%} = {run['offered_rate']:.0f}/s"
                )
                groups.append(run["latency"])
    width = 0.27
    for offset, key in enumerate(("p50_ms", "p99_ms", "p999_ms")):
        xs = [i + (offset - 1) * width for i in range(len(groups))]
        axis.bar(xs, [group[key] for group in groups], width, label=key.replace("_ms", ""))
    axis.set_xticks(range(len(labels)), labels, fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel("enqueue -> start, ms (log scale)")
    axis.set_title("Open-loop latency at fractions of closed-loop capacity")
    axis.legend()
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_all(results: Path, images: Path) -> list[Path]:
    """Every picture of docs/scale.md, from whichever backends have results."""
    documents = load(results)
    if not documents:
        raise SystemExit(f"no fleet-*.json in {results}: run python -m benchmarks.fleet first")
    images.mkdir(parents=True, exist_ok=True)
    return [
        throughput(documents, images / "scale-throughput.png"),
        cpu_cost(documents, images / "scale-cpu.png"),
        latency(documents, images / "scale-latency.png"),
    ]
