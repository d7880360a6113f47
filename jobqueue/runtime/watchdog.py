"""The timeout watchdog: a sync job past its timeout gets its failed attempt recorded at once
(fenced), and if its thread has not ended a grace period later, the worker recycles itself.

A thread cannot be killed, so the stuck thread still counts as busy until it ends or the
process is replaced; async jobs are timed out by ``asyncio.timeout`` inside the job instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog

from jobqueue.context import JobTimeoutError
from jobqueue.registry import registry
from jobqueue.runtime import execution
from jobqueue.runtime.in_flight import InFlight
from jobqueue.runtime.lifecycle import EXIT_RECYCLE, StopRequest
from jobqueue.store.claimed import ClaimedJob

log = structlog.get_logger("jobqueue.worker")

_CHECK_EVERY = 0.05


class Watchdog:
    def __init__(
        self,
        in_flight: InFlight,
        *,
        timeout_grace: float,
        request_stop: StopRequest,
        finished: threading.Event,
    ) -> None:
        self.in_flight = in_flight
        self.timeout_grace = timeout_grace
        self.request_stop = request_stop
        self.finished = finished

    def run(self) -> None:
        while not self.finished.wait(_CHECK_EVERY):
            now = time.monotonic()
            for current in self.in_flight.with_deadlines():
                assert current.deadline is not None
                if now < current.deadline:
                    continue
                if current.timed_out_at is None:
                    current.timed_out_at = now
                    if current.settle():
                        self._time_out(current.job)
                elif now - current.timed_out_at > self.timeout_grace:
                    self.request_stop(
                        f"recycle: a thread of job {current.job.id} is still running "
                        f"{self.timeout_grace:g} s after its timeout",
                        code=EXIT_RECYCLE,
                    )

    def _time_out(self, job: ClaimedJob) -> None:
        definition = registry.find(job.name)
        limit = definition.options.timeout if definition is not None else None
        error = JobTimeoutError(f"the job ran longer than its timeout of {limit or 0:g} s")
        outcome = execution.decide_safely(job, error)
        if outcome.retry_at is not None:
            # Its thread may run on for the grace period: no retry may start before that ends.
            earliest = datetime.now(UTC) + timedelta(seconds=self.timeout_grace)
            outcome = replace(outcome, retry_at=max(outcome.retry_at, earliest))
        execution.run_hooks(job, outcome)
        self.in_flight.outcomes.put(job, outcome)
        log.warning("job_timed_out", **job.log_fields)
