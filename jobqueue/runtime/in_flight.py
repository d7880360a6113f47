"""The attempts a worker holds, from claim to written outcome, and how many it should hold.

Executions (claimed, maybe running) and finished outcomes waiting to be written share one
lock, so a job moving from one to the other is never seen in neither: reconciliation and
shutdown rely on seeing every attempt this process knows about.
"""

from __future__ import annotations

import threading
import time

from jobqueue import context
from jobqueue.runtime import execution
from jobqueue.runtime.execution import RELEASED, Execution, Outcome
from jobqueue.runtime.outcomes import PendingOutcomes
from jobqueue.store.claimed import ClaimedJob

#: Automatic prefetch holds about this much not-yet-started work (by the average job time)...
PREFETCH_HORIZON = 0.05
#: ...but never more than this many jobs beyond the threads.
MAX_PREFETCH = 500
#: An attempt that has run this long (seconds) has its start written with the worker's next
#: write. Shorter ones end first and never pay for it: a failure or success says it started.
RECORD_START_AFTER = 0.25


class InFlight:
    def __init__(self, *, batch: int) -> None:
        self.lock = threading.Lock()
        #: Set when there is something for the claim loop to do (an outcome, a stop, NOTIFY).
        self.wake = threading.Event()
        # Keyed by (id, attempts): a stuck attempt past its timeout and the retry of the same
        # job that this process may claim meanwhile are two different executions.
        self.executions: dict[tuple[str, int], Execution] = {}
        self.outcomes = PendingOutcomes(self.lock, self.wake, batch=batch)
        #: Held while outcomes are taken and written and claims are made and dispatched, so
        #: reconciliation sees every job this process knows about.
        self.cycle_lock = threading.Lock()
        self.processed = 0
        self.job_seconds: float | None = None  # moving average of job run time

    def count(self) -> int:
        with self.lock:
            return len(self.executions)

    def add(self, job: ClaimedJob) -> Execution:
        current = Execution(job)
        with self.lock:
            self.executions[job.fence] = current
        return current

    def finish(self, current: Execution, outcome: Outcome) -> int:
        """Record an attempt that ended (unless the watchdog or a release settled it first);
        returns how many attempts this process has finished."""
        context.forget_cancel(current.job.id)
        if current.began_at:
            took = time.monotonic() - current.began_at
            average = self.job_seconds  # a lost update between threads is harmless here
            self.job_seconds = took if average is None else average + 0.05 * (took - average)
        if current.settle():
            execution.run_hooks(current.job, outcome)
            self.outcomes.put(current.job, outcome)
        with self.lock:
            self._forget(current)
            self.processed += 1
            processed = self.processed
        self.wake.set()
        return processed

    def release(self, *, only_unstarted: bool) -> None:
        """Hand back (as released outcomes) the attempts not settled otherwise."""
        with self.lock:
            candidates = list(self.executions.values())
        for current in candidates:
            self.hand_back(current, only_if_unstarted=only_unstarted)

    def hand_back(self, current: Execution, *, only_if_unstarted: bool = False) -> None:
        """Release one attempt uncounted, unless something else settled it first."""
        if current.settle(only_if_unstarted=only_if_unstarted):
            # Outcome first, then forget it: reconciliation must see it in one or the other.
            self.outcomes.put(current.job, Outcome(RELEASED))
            with self.lock:
                self._forget(current)

    def _forget(self, current: Execution) -> None:
        if self.executions.get(current.job.fence) is current:
            del self.executions[current.job.fence]

    def known_fences(self) -> set[tuple[str, int]]:
        """Every attempt this process knows it holds; call with ``cycle_lock`` held."""
        with self.lock:
            known = {e.job.fence for e in self.executions.values()}
            known.update(self.outcomes.fences())
        return known

    def starts_to_record(self, now: float) -> list[Execution]:
        """Running attempts whose start the database does not know yet, begun at least
        ``RECORD_START_AFTER`` before ``now`` (monotonic).

        Executions are kept in claim order and the job threads take them first in, first
        out, so the walk stops at the first one not yet begun: it looks at about ``threads``
        entries, never at the prefetched ones behind them.
        """
        due: list[Execution] = []
        with self.lock:
            for current in self.executions.values():
                if not current.started:
                    break
                if not current.start_recorded and current.began_at <= now - RECORD_START_AFTER:
                    due.append(current)
        return due

    def started_ids(self) -> list[str]:
        with self.lock:
            return [e.job.id for e in self.executions.values() if e.started]

    def with_deadlines(self) -> list[Execution]:
        with self.lock:
            return [e for e in self.executions.values() if e.deadline is not None]


def claim_limits(threads: int, prefetch: int | None, job_seconds: float | None) -> tuple[int, int]:
    """(most jobs to hold, claim again once no more than this many are held).

    The automatic prefetch (``prefetch=None``) sizes each claim by how long jobs take: about
    50 ms of work beyond the busy threads, so a claim round trip is shared by hundreds of tiny
    jobs but long jobs are not hoarded away from other workers (never fewer than ``threads``).
    A fixed prefetch refills once the prefetched jobs have all started.
    """
    if prefetch is not None:
        return threads + prefetch, threads if prefetch else threads - 1
    automatic = threads
    if job_seconds is not None:
        wanted = threads * PREFETCH_HORIZON / max(job_seconds, 1e-6)
        automatic = max(threads, min(MAX_PREFETCH, int(wanted)))
    # Claim again at half the prefetch left, so the next batch is there before it runs out.
    return threads + automatic, threads + automatic // 2 if automatic > threads else threads
