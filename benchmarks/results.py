"""What a benchmark produces: repeated measurements of one figure, summarised as the median
and the spread (min-max) over the runs, plus the tables and texts that are not figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One figure (a rate, a time) measured ``len(values)`` times."""

    workload: str
    system: str
    config: str
    unit: str
    values: list[float]
    higher_is_better: bool = True
    #: For a peer: the config of our figure (same workload) it is compared with.
    versus: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.values), max(self.values)


@dataclass
class Table:
    """A small table that is not a repeated figure (memory over a run, claim cost details)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Results:
    backend: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    #: Titled verbatim texts: query plans.
    texts: list[tuple[str, str]] = field(default_factory=list)
    #: Systems whose versions the report lists (name -> version).
    systems: dict[str, str] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def find(self, workload: str, system: str, config: str) -> Figure | None:
        for figure in self.figures:
            if (figure.workload, figure.system, figure.config) == (workload, system, config):
                return figure
        return None


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation: a p99 of 200 samples is a real sample)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def fmt(value: float, unit: str = "") -> str:
    """A figure with as many digits as it deserves: 12,345 / 123 / 12.3 / 1.23."""
    if value >= 1000:
        text = f"{value:,.0f}"
    elif value >= 100:
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()
