"""Failed logins counted per client address, so that guessing the token is slow.

After ``MAX_FAILURES`` failures within ``WINDOW_SECONDS`` an address gets 429 for every new
attempt until the oldest of those failures leaves the window. Refused attempts are not
checked, so a guess made while blocked can never succeed, and not counted, so the block ends.
"""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_FAILURES = 10
WINDOW_SECONDS = 60.0
#: Addresses remembered at most: a botnet's many addresses cannot grow memory without bound.
MAX_CLIENTS = 10_000


def _now() -> float:
    """The clock (monotonic: a change of the wall clock neither lifts nor extends a block)."""
    return time.monotonic()


class FailureLimiter:
    """Recent failure times per client address; thread-safe, as a mounted app may call it
    from several threads."""

    def __init__(self, *, limit: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, client: str) -> None:
        now = _now()
        with self._lock:
            if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
                self._forget_expired(now)
                if len(self._failures) >= MAX_CLIENTS:  # all recent: drop the oldest entry
                    del self._failures[next(iter(self._failures))]
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)

    def blocked_for(self, client: str) -> float:
        """Seconds until ``client`` may try again: 0 unless its last ``limit`` failures all
        fall within the window."""
        with self._lock:
            times = self._failures.get(client)
            if times is None or len(times) < self.limit:
                return 0.0
            return max(0.0, times[0] + self.window - _now())

    def _forget_expired(self, now: float) -> None:
        for client in [c for c, times in self._failures.items() if times[-1] + self.window < now]:
            del self._failures[client]
