"""What operators' queries answer with: per-queue summaries, outcome counts (over a window and
per minute), and the result of a cancel. Plain values, shared by the CLI, the dashboard and the
metrics collector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QueueSummary:
    queue: str
    pending: int  # due or scheduled
    due: int
    running: int
    failed: int
    paused: bool
    latency_seconds: float | None  # age of the oldest due job


@dataclass(frozen=True)
class Stats:
    minutes: int
    succeeded: int
    retried: int
    failed: int
    discarded: int
    #: Jobs that ended ``expired`` (not started by their ``expires_at``).
    expired: int = 0

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.discarded + self.expired

    @property
    def per_second(self) -> float:
        return self.processed / (self.minutes * 60)

    @property
    def failure_rate(self) -> float:
        """Failed attempts (retried or final) per attempt."""
        attempts = self.succeeded + self.retried + self.failed + self.discarded
        return (self.retried + self.failed) / attempts if attempts else 0.0


@dataclass(frozen=True)
class MinuteStats:
    """Outcomes recorded in one minute (the dashboard's throughput chart)."""

    minute: datetime
    succeeded: int
    retried: int
    failed: int
    discarded: int
    #: Jobs that ended ``expired`` (not started by their ``expires_at``).
    expired: int = 0

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.discarded + self.expired


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[str]  # pending/blocked jobs that will never run
    requested: list[str]  # running jobs asked to stop
    unchanged: list[str]  # already finished
