"""Running claimed jobs: sync jobs on the worker's job threads, ``async def`` jobs on one event
loop thread; every attempt's outcome goes to :class:`~jobqueue.runtime.in_flight.InFlight`,
errors included, so a job is never left ``running`` behind a live worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future

import structlog

from jobqueue.database import Database
from jobqueue.registry import registry
from jobqueue.runtime import execution
from jobqueue.runtime.execution import Execution, Outcome
from jobqueue.runtime.in_flight import InFlight
from jobqueue.runtime.job_threads import JobThreads
from jobqueue.store import attempts
from jobqueue.store.claimed import ClaimedJob

log = structlog.get_logger("jobqueue.worker")


class Dispatcher:
    def __init__(
        self,
        in_flight: InFlight,
        database: Database,
        *,
        process_id: str,
        threads: int,
        on_finished: Callable[[int], None],
    ) -> None:
        """``on_finished(n)`` is called after each attempt, with how many have finished."""
        self.in_flight = in_flight
        self.database = database
        self.process_id = process_id
        #: Set by :meth:`stop_taking`: jobs with durable steps let go at their next boundary.
        self.steps_stop = threading.Event()
        self._pool = JobThreads(threads, "jobqueue-job")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_finished = on_finished

    def dispatch(self, job: ClaimedJob) -> None:
        definition = registry.find(job.name)
        current = self.in_flight.add(job)
        log.debug("job_claimed", **job.log_fields)
        if definition is not None and definition.is_async:
            if job.must_record_start and not self._record_start(current):
                return
            current.begin(None)  # asyncio.timeout inside the job enforces its timeout
            future = asyncio.run_coroutine_threadsafe(
                execution.run_async(job, self.database, self.steps_stop), self._event_loop()
            )
            future.add_done_callback(lambda f: self._finish(current, _result(f, job)))
        else:
            timeout = definition.options.timeout if definition is not None else None
            self._pool.submit(self._run_in_thread, current, timeout)

    def stop_taking(self) -> None:
        """Drop queued jobs that have not started; running ones go on, and those with durable
        steps let go at their next step or item (released, uncounted)."""
        self.steps_stop.set()
        self._pool.shutdown()

    def close(self) -> None:
        """Let the threads end after their current job and stop the event loop: a worker run
        inside a process (tests, embedding) must not leave them behind."""
        self._pool.shutdown()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _run_in_thread(self, current: Execution, timeout: float | None) -> None:
        if not current.begin(timeout):
            return  # released at shutdown before it started
        if current.job.must_record_start and not self._record_start(current):
            return
        log.debug("job_started", **current.job.log_fields)
        try:
            outcome = execution.run_sync(current.job, self.database, self.steps_stop)
        except BaseException as error:  # never leave a job running behind a live worker
            outcome = execution.decide_safely(current.job, error)
        self._finish(current, outcome)

    def _record_start(self, current: Execution) -> bool:
        """Write the start of an attempt that must have it written before its body runs (see
        :attr:`ClaimedJob.must_record_start`); False, with the attempt handed back uncounted,
        when that could not be done."""
        job = current.job
        try:
            with self.database.transaction() as connection:
                recorded = attempts.mark_started(
                    connection, process_id=self.process_id, fences=[job.fence]
                )
        except Exception as error:  # the database blipped: run it later rather than uncounted
            log.warning("job_start_not_recorded", **job.log_fields, error=str(error)[:200])
            recorded = 0
        if recorded != 1:
            self.in_flight.hand_back(current)
            return False
        current.start_recorded = True
        return True

    def _finish(self, current: Execution, outcome: Outcome) -> None:
        self._on_finished(self.in_flight.finish(current, outcome))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(
                target=self._loop.run_forever, name="jobqueue-asyncio", daemon=True
            ).start()
        return self._loop


def _result(future: Future[Outcome], job: ClaimedJob) -> Outcome:
    try:
        return future.result()
    except BaseException as error:  # the loop itself failed the coroutine
        return execution.decide_safely(job, error)
