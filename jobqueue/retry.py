"""Retry policy: backoff delays, and the exceptions a job raises to steer its own retries.

The default backoff is exponential with jitter: ``base * 2^(n-1)`` seconds for the n-th failure
(so the first retry comes after at least one second with the default base of 1 s), plus up to
25 % random jitter so that jobs failing together do not retry in lockstep, capped at one day.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from jobqueue.options import Backoff

DEFAULT_BACKOFF_BASE = 1.0
MAX_BACKOFF_SECONDS = 24 * 3600.0
JITTER = 0.25


def backoff_delay(failed_attempts: int, backoff: Backoff | None = None) -> float:
    """Seconds to wait before retrying after the ``failed_attempts``-th failure (1-based)."""
    if callable(backoff):
        return max(0.0, float(backoff(failed_attempts)))
    base = DEFAULT_BACKOFF_BASE if backoff is None else float(backoff)
    exponent = min(max(failed_attempts - 1, 0), 62)
    delay: float = min(base * (2**exponent), MAX_BACKOFF_SECONDS)
    return delay * (1 + random.uniform(0, JITTER))


class RetryJob(Exception):
    """Raise inside a job to be retried at a time of your choosing instead of by the backoff.

    It counts as a failed attempt (so a job cannot postpone itself forever past max_attempts).
    """

    def __init__(
        self,
        reason: str = "",
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
    ) -> None:
        super().__init__(reason or "the job asked to be retried")
        if delay is not None and at is not None:
            raise ValueError("RetryJob takes delay= or at=, not both")
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise ValueError("RetryJob(at=...) needs an aware datetime")
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        self.delay = delay
        self.at = at

    def retry_at(self, now: datetime) -> datetime | None:
        if self.at is not None:
            return self.at.astimezone(UTC)
        if self.delay is not None:
            return now + timedelta(seconds=max(0.0, self.delay))
        return None


class FailJob(Exception):
    """Raise inside a job to fail it permanently at once, whatever attempts remain."""


class JobCancelled(Exception):
    """Raise inside a job that saw :func:`jobqueue.cancel_requested` to end it as ``cancelled``."""


class SleepUntil(BaseException):
    """Raised by :func:`jobqueue.durable_sleep` to end the run until ``wake_at``: the job goes
    back to pending without counting an attempt. A ``BaseException``, so a job's own
    ``except Exception`` does not swallow it."""

    def __init__(self, wake_at: datetime) -> None:
        super().__init__(f"sleeping until {wake_at.isoformat()}")
        self.wake_at = wake_at


class ReleaseAtStep(BaseException):
    """Raised at a durable step boundary while the worker stops gracefully: the job is handed
    back without counting an attempt and resumes at that step."""
