"""The overview's throughput chart as plain numbers for an inline SVG: no JavaScript, no build
step, and nothing in it comes from job data (only counts), so there is nothing to escape."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.admin import MinuteStats

WIDTH = 720
HEIGHT = 160
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    label: str  # the tooltip: minute and counts


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    peak: int
    bars: list[Bar]
    first: str
    last: str


def throughput_chart(minutes: list[MinuteStats]) -> Chart:
    """Stacked bars per minute: succeeded below, failed attempts (retried or final) above."""
    peak = max((m.succeeded + m.retried + m.failed + m.discarded for m in minutes), default=0)
    scale = (HEIGHT - 10) / peak if peak else 0.0
    step = WIDTH / max(len(minutes), 1)
    bars = []
    for index, m in enumerate(minutes):
        failures = m.retried + m.failed + m.discarded
        ok_height = m.succeeded * scale
        failed_height = failures * scale
        bars.append(
            Bar(
                x=round(index * step, 2),
                width=round(max(step - GAP, 1), 2),
                ok_y=round(HEIGHT - ok_height, 2),
                ok_height=round(ok_height, 2),
                failed_y=round(HEIGHT - ok_height - failed_height, 2),
                failed_height=round(failed_height, 2),
                label=f"{m.minute:%H:%M} UTC: {m.succeeded} succeeded, {failures} failed",
            )
        )
    first = f"{minutes[0].minute:%H:%M}" if minutes else ""
    last = f"{minutes[-1].minute:%H:%M}" if minutes else ""
    return Chart(WIDTH, HEIGHT, peak, bars, first, last)
