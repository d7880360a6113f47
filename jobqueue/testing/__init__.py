"""Helpers for your own test suite.

``inline()``: inside the block, enqueue runs each job at once in the calling thread (no
database, no worker) and lets its exceptions propagate, for tests that only care about what a
job does; it yields the runs, with each job's result and what its durable steps recorded.
``drain()``: run every due job in-process, against the real database and through the same code
path as a worker (claim, run, fenced write, retries), for tests that care about the
queue too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from ulid import ULID

from jobqueue.database import Database
from jobqueue.enqueue import inline_mode
from jobqueue.queue import JobQueue, get_default_queue
from jobqueue.runtime import execution
from jobqueue.runtime.lifecycle import register
from jobqueue.runtime.outcomes import Record, log_report, write_records
from jobqueue.schema import EXPIRED
from jobqueue.store import claiming, processes
from jobqueue.testing._inline import InlineRuns, runner

__all__ = ["InlineRuns", "drain", "inline"]


@contextmanager
def inline(jobqueue: Database | None = None) -> Iterator[InlineRuns]:
    """Run jobs at enqueue time, in-process, for the duration of the block; yields the list of
    runs (:class:`~jobqueue.steps.InlineRun`: job id, name, result, and ``steps``: what each
    durable step recorded). Steps run once each, iterations to the end, and sleeps return at
    once. ``step(..., transaction=True)`` needs ``jobqueue``: its transaction is opened there.
    A handle's ``result()`` returns what the job returned."""
    runs = InlineRuns()
    token = inline_mode.set(runner(runs, jobqueue))
    try:
        yield runs
    finally:
        inline_mode.reset(token)


def drain(
    jobqueue: JobQueue | None = None,
    *,
    queues: Sequence[str] | None = None,
    max_jobs: int | None = None,
) -> Counter[str]:
    """Run due jobs one at a time until none is due; returns a count per outcome status
    (``succeeded``, ``pending`` for a scheduled retry, ``failed``, ``cancelled``, and
    ``expired`` for a job found past its ``expires_at``, which is not run)."""
    jobqueue = jobqueue or get_default_queue()
    jobqueue.verify_schema()
    process_id = str(ULID())
    counts: Counter[str] = Counter()
    with jobqueue.transaction() as connection:
        register(connection, process_id=process_id, kind="drain", queues=queues)
    try:
        while max_jobs is None or sum(counts.values()) < max_jobs:
            with jobqueue.transaction() as connection:
                claimed, expired = claiming.claim_due(
                    connection,
                    process_id=process_id,
                    queues=list(queues) if queues is not None else None,
                    limit=1,
                    now=datetime.now(UTC),
                )
            if expired:
                counts[EXPIRED] += len(expired)
                continue
            if not claimed:
                break
            job = claimed[0]
            outcome = execution.run_sync(job, jobqueue)
            execution.run_hooks(job, outcome)
            with jobqueue.transaction() as connection:
                report = write_records(
                    connection, process_id, [Record(job, outcome)], datetime.now(UTC)
                )
            # Failures and refusals are logged as a worker would; each success is only in the
            # returned counts, not a DEBUG line printed into the host's test output (an
            # unconfigured structlog prints every level).
            report.succeeded = []
            log_report(report)
            counts[outcome.status] += 1
    finally:
        with jobqueue.transaction() as connection:
            processes.deregister(connection, process_id)
    return counts
