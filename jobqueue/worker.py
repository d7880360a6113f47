"""A worker process: claims due jobs in batches, runs them on threads (and ``async def`` jobs on
an event loop), heartbeats, and stops gracefully.

Signals (SIGTERM/SIGINT: finish running jobs within the shutdown timeout, release the rest; a
second one, or SIGQUIT: release at once) only set flags that the main loop reads, because a
handler that touched locks could deadlock against the thread it interrupted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import FrameType

import structlog
from sqlalchemy.exc import DBAPIError
from ulid import ULID

from jobqueue import claims, execution, processes
from jobqueue.claims import ClaimedJob
from jobqueue.db import is_transient, mask_url
from jobqueue.errors import JobQueueError
from jobqueue.execution import Execution, JobTimeoutError, Outcome
from jobqueue.job_threads import JobThreads
from jobqueue.listener import NotifyListener
from jobqueue.outcomes import (
    RELEASED,
    PendingOutcomes,
    Record,
    job_fields,
    log_report,
    write_records,
)
from jobqueue.queue import JobQueue
from jobqueue.registry import registry
from jobqueue.settings import MIN_POLL_INTERVAL, WorkerSettings

log = structlog.get_logger("jobqueue.worker")

EXIT_OK = 0
EXIT_STARTUP_FAILED = 69
EXIT_DECLARED_DEAD = 70
EXIT_RECYCLE = 75
_TICK = 0.1  # longest the main loop sleeps before looking at signal flags again
#: Automatic prefetch holds about this much not-yet-started work (by the average job time)...
PREFETCH_HORIZON = 0.05
#: ...but never more than this many jobs beyond the threads.
MAX_PREFETCH = 500


class Worker:
    """Claims up to ``threads + prefetch`` jobs and writes finished outcomes in the same
    transaction as the next claim.

    The automatic prefetch (the default) sizes each claim by how long jobs take: about 50 ms of
    work beyond the busy threads, so a claim round trip is shared by hundreds of tiny jobs but
    long jobs are not hoarded away from other workers (never fewer than ``threads``). A fixed
    ``--prefetch N`` refills once the prefetched jobs have all started.
    """

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings.validate()
        self.process_id = settings.process_id or str(ULID())
        self.queues = settings.queues
        self.jobqueue = JobQueue(
            settings.database_url,
            pool_size=settings.threads + 3,
            sqlite_synchronous=settings.sqlite_synchronous,  # type: ignore[arg-type]
            busy_timeout_ms=int(settings.sqlite_busy_timeout * 1000),
        )
        self._job_seconds: float | None = None  # moving average of job run time
        self._pool = JobThreads(settings.threads, "jobqueue-job")
        self._loop: asyncio.AbstractEventLoop | None = None
        # Keyed by (id, attempts): a stuck attempt past its timeout and the retry of the same
        # job that this process may claim meanwhile are two different executions.
        self._executions: dict[tuple[str, int], Execution] = {}
        self._last_beat = 0.0  # monotonic time of the last committed heartbeat
        self._lock = threading.Lock()
        self._wake = threading.Event()
        # Shares the lock of the executions, so a job moving from one to the other is never
        # seen in neither.
        self._outcomes = PendingOutcomes(self._lock, self._wake, batch=settings.threads)
        # Held while outcomes are taken and written and claims are made and dispatched, so
        # reconciliation sees every job this process knows about.
        self._cycle_lock = threading.Lock()
        self._finished = threading.Event()  # set when the process is about to exit
        self._stop_reason: str | None = None
        self._stop_lock = threading.Lock()
        self._stop_now = False
        self._signals = 0
        self._exit_code = EXIT_OK
        self._processed = 0
        self._parent = os.getppid()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        self._install_signal_handlers()
        if not self._register():
            return EXIT_STARTUP_FAILED if self._stop_reason is None else self._exit_code
        log.info(
            "process_started",
            kind="worker",
            process_id=self.process_id,
            pid=os.getpid(),
            database=mask_url(self.jobqueue.database_url),
            queues=self.queues or "*",
            threads=self.settings.threads,
            prefetch=self.settings.prefetch,
            jobs=registry.names(),
        )
        for target, name in (
            (self._heartbeat_loop, "heartbeat"),
            (self._watchdog_loop, "watchdog"),
        ):
            threading.Thread(target=target, name=f"jobqueue-{name}", daemon=True).start()
        if self.jobqueue.dialect == "postgresql":
            NotifyListener(
                self.jobqueue.database_url, self.queues, self._wake.set, self._finished
            ).start()
        try:
            self._claim_loop()
        finally:
            self._shutdown()
        return self._exit_code

    def _register(self) -> bool:
        def register() -> None:
            with self.jobqueue.transaction() as connection:
                processes.register(
                    connection,
                    process_id=self.process_id,
                    kind="worker",
                    queues=self.queues,
                    supervisor_id=self.settings.supervisor_id,
                )
            self._last_beat = time.monotonic()

        try:
            return processes.start_when_reachable(
                self.jobqueue,
                register,
                process_id=self.process_id,
                sleep=self._sleep,
                stopping=lambda: self._stop_reason is not None,
            )
        except (JobQueueError, DBAPIError) as error:
            log.error("process_start_failed", process_id=self.process_id, error=str(error))
            return False

    def request_stop(self, reason: str, *, now: bool = False, code: int = EXIT_OK) -> None:
        with self._stop_lock:
            self._request_stop(reason, now=now, code=code)

    def _request_stop(self, reason: str, *, now: bool, code: int) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            self._exit_code = code
            log.info("process_stopping", process_id=self.process_id, reason=reason, immediate=now)
        if now:
            self._stop_now = True
        self._wake.set()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        last = [0.0]

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            # Ctrl-C or `docker stop` signals the whole group and the supervisor forwards the
            # same signal a moment later: a repeat within a second is that echo, not a second
            # request to stop at once.
            now = time.monotonic()
            if signum == signal.SIGQUIT:
                self._signals += 2
            elif now - last[0] > 1.0:
                self._signals += 1
            last[0] = now

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, on_stop)

    def _check_signals(self) -> None:
        if self._signals >= 2:
            self.request_stop("signal", now=True)
        elif self._signals == 1:
            self.request_stop("signal")

    # -- the loop: write outcomes, claim, dispatch -------------------------------------------

    def _claim_loop(self) -> None:
        idle_wait = MIN_POLL_INTERVAL
        db_error_delay = 0.1
        next_due: datetime | None = None
        drained = True  # the last claim took all that was due: look before taking the lock
        while True:
            self._check_signals()
            if self._stop_reason is not None:
                return
            in_flight = self._in_flight()
            capacity, low_water = self._claim_limits()
            want = capacity - in_flight if in_flight <= low_water else 0
            if self.settings.max_jobs is not None:  # never claim what this life won't run
                want = min(want, max(0, self.settings.max_jobs - self._processed - in_flight))
            failed: Exception | None = None
            claimed: list[ClaimedJob] = []
            with self._cycle_lock:
                records = self._outcomes.take(force=want > 0)
                if records or want:
                    try:
                        claimed, next_due = self._cycle(records, want, look_first=drained)
                    except Exception as error:  # the database blipped: keep outcomes, retry
                        self._outcomes.requeue(records)
                        failed = error
                    for job in claimed:
                        self._dispatch(job)
            if not records and want == 0:
                self._sleep(self._outcomes.wait(_TICK))
                continue
            if failed is not None:
                event = log.warning if is_transient(failed) else log.error
                event("claim_failed", error=str(failed).splitlines()[0], outcomes=len(records))
                self._sleep(db_error_delay)
                db_error_delay = min(db_error_delay * 2, 5.0)
                continue
            db_error_delay = 0.1
            if want:
                drained = len(claimed) < want
            if claimed:
                idle_wait = MIN_POLL_INTERVAL
                continue
            if records or not want:
                continue
            if self.settings.burst and self._burst_done():
                self.request_stop("burst: nothing due and nothing running")
                return
            wait = idle_wait
            if next_due is not None:
                wait = min(wait, max(0.0, (next_due - datetime.now(UTC)).total_seconds()))
            self._sleep(wait)
            idle_wait = min(idle_wait * 2, self.settings.poll_interval)

    def _cycle(
        self, records: list[Record], want: int, *, look_first: bool
    ) -> tuple[list[ClaimedJob], datetime | None]:
        """One write transaction: record finished outcomes and claim up to ``want`` jobs."""
        now = datetime.now(UTC)
        if look_first and not records:
            # A cheap read first, so an idle poll never takes the write lock (SQLite) or row
            # locks; it also tells when the next scheduled job is due.
            with self.jobqueue.transaction(read_only=True) as connection:
                next_due = claims.next_due_at(connection, self.queues)
            if next_due is None or next_due > now:
                return [], next_due
        with self.jobqueue.transaction() as connection:
            # A busy worker proves it is alive in its claim transactions too: under heavy
            # SQLite contention the heartbeat thread's own write can wait behind claims.
            beat = time.monotonic()
            beating = beat - self._last_beat >= self.settings.heartbeat_interval
            if beating:
                processes.heartbeat(connection, self.process_id)
            report = write_records(connection, self.process_id, records, now) if records else None
            claimed = (
                claims.claim_jobs(
                    connection, process_id=self.process_id, queues=self.queues, limit=want, now=now
                )
                if want
                else []
            )
        if beating:
            self._last_beat = beat
        if report is not None:
            try:
                log_report(report)
            except Exception as error:  # written already: a logging failure must not redo it
                log.error("log_failed", error=repr(error))
        return claimed, None

    def _claim_limits(self) -> tuple[int, int]:
        """(most jobs to hold, claim again once no more than this many are held)."""
        threads, fixed = self.settings.threads, self.settings.prefetch
        if fixed is not None:
            return threads + fixed, threads if fixed else threads - 1
        average = self._job_seconds
        prefetch = threads
        if average is not None:
            wanted = threads * PREFETCH_HORIZON / max(average, 1e-6)
            prefetch = max(threads, min(MAX_PREFETCH, int(wanted)))
        # Claim again at half the prefetch left, so the next batch is there before it runs out.
        return threads + prefetch, threads + prefetch // 2 if prefetch > threads else threads

    def _burst_done(self) -> bool:
        """Nothing running here or anywhere in our queues (a job held by a process that died
        will be rescued and is still work for this burst), and still nothing due: looked at
        after the running count, so a job rescued between the two reads is seen as due."""
        if self._in_flight():
            return False
        try:
            with self.jobqueue.transaction(read_only=True) as connection:
                if claims.running_count(connection, self.queues):
                    return False
            with self.jobqueue.transaction(read_only=True) as connection:
                due = claims.next_due_at(connection, self.queues)
            return due is None or due > datetime.now(UTC)
        except Exception:
            return False

    def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early on NOTIFY, a finished job or a stop request."""
        deadline = time.monotonic() + seconds
        while True:
            self._check_signals()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop_reason is not None:
                return
            if self._wake.wait(min(remaining, _TICK)):
                self._wake.clear()
                return

    # -- running -----------------------------------------------------------------------------

    def _in_flight(self) -> int:
        with self._lock:
            return len(self._executions)

    def _dispatch(self, job: ClaimedJob) -> None:
        definition = registry.find(job.name)
        current = Execution(job)
        with self._lock:
            self._executions[job.fence] = current
        log.debug("job_claimed", **job_fields(job))
        if definition is not None and definition.is_async:
            current.begin(None)  # asyncio.timeout inside the job enforces its timeout
            future = asyncio.run_coroutine_threadsafe(execution.run_async(job), self._event_loop())
            future.add_done_callback(lambda f: self._finish(current, _result(f, job)))
        else:
            timeout = definition.options.timeout if definition is not None else None
            self._pool.submit(self._run_in_thread, current, timeout)

    def _run_in_thread(self, current: Execution, timeout: float | None) -> None:
        if not current.begin(timeout):
            return  # released at shutdown before it started
        log.debug("job_started", **job_fields(current.job))
        try:
            outcome = execution.run_sync(current.job)
        except BaseException as error:  # never leave a job running behind a live worker
            outcome = execution.decide_safely(current.job, error)
        self._finish(current, outcome)

    def _finish(self, current: Execution, outcome: Outcome) -> None:
        execution.forget_cancel(current.job.id)
        if current.began_at:
            took = time.monotonic() - current.began_at
            average = self._job_seconds  # a lost update between threads is harmless here
            self._job_seconds = took if average is None else average + 0.05 * (took - average)
        if current.settle():
            execution.run_hooks(current.job, outcome)
            self._outcomes.put(current.job, outcome)
        with self._lock:
            if self._executions.get(current.job.fence) is current:
                del self._executions[current.job.fence]
            self._processed += 1
            processed = self._processed
        self._wake.set()
        if self.settings.max_jobs is not None and processed >= self.settings.max_jobs:
            self.request_stop(f"recycle: processed {processed} jobs", code=EXIT_RECYCLE)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(
                target=self._loop.run_forever, name="jobqueue-asyncio", daemon=True
            ).start()
        return self._loop

    # -- background duties -------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._finished.wait(self.settings.heartbeat_interval):
            if self.settings.supervisor_id and os.getppid() != self._parent:
                self.request_stop("the supervisor exited")
            try:
                beat = time.monotonic()
                with self.jobqueue.transaction() as connection:
                    alive = processes.heartbeat(connection, self.process_id)
                self._last_beat = beat
            except Exception as error:
                log.warning(
                    "heartbeat_failed", process_id=self.process_id, error=str(error).splitlines()[0]
                )
                continue
            if not alive:
                log.error("process_found_declared_dead", process_id=self.process_id)
                self.request_stop("declared dead", now=True, code=EXIT_DECLARED_DEAD)
                return
            try:
                self._reconcile()
                self._pass_on_cancellations()
            except Exception as error:  # the next heartbeat tries again
                log.warning("reconcile_failed", error=str(error).splitlines()[0])
            limit = self.settings.max_memory_mb
            if limit is not None and (rss := processes.resident_memory_mb()) > limit:
                self.request_stop(f"recycle: memory {rss:.0f} MB > {limit:g} MB", code=EXIT_RECYCLE)

    def _reconcile(self) -> None:
        """Hand back jobs the database says we hold but this process does not know about.

        That happens when a claim's COMMIT reached the database but its answer was lost with
        the connection: without this, such a job would stay ``running`` behind a live worker
        (whose heartbeat keeps it from being rescued) for ever.
        """
        with self._cycle_lock:
            with self.jobqueue.transaction(read_only=True) as connection:
                held = claims.held_jobs(connection, self.process_id)
            with self._lock:
                known = {e.job.fence for e in self._executions.values()}
                known.update(self._outcomes.fences())
            strays = [fence for fence in held if fence not in known]
            if not strays:
                return
            with self.jobqueue.transaction() as connection:
                released = claims.release_jobs(
                    connection, process_id=self.process_id, fences=strays, now=datetime.now(UTC)
                )
        log.warning(
            "jobs_reconciled",
            process_id=self.process_id,
            released=released,
            job_ids=[job_id for job_id, _ in strays],
        )

    def _pass_on_cancellations(self) -> None:
        """Tell running jobs an operator asked them to stop (see jobqueue.cancel_requested)."""
        with self._lock:
            running = [e.job.id for e in self._executions.values() if e.started]
        if not running:
            return
        with self.jobqueue.transaction(read_only=True) as connection:
            requested = claims.cancellation_requests(connection, running)
        for job_id in requested:
            execution.request_cancel(job_id)

    def _watchdog_loop(self) -> None:
        """Fail sync jobs past their timeout at once; recycle if their thread will not end."""
        while not self._finished.wait(0.05):
            now = time.monotonic()
            with self._lock:
                running = [e for e in self._executions.values() if e.deadline is not None]
            for current in running:
                assert current.deadline is not None
                if now < current.deadline:
                    continue
                if current.timed_out_at is None:
                    current.timed_out_at = now
                    if current.settle():
                        self._time_out(current.job)
                elif now - current.timed_out_at > self.settings.timeout_grace:
                    self.request_stop(
                        f"recycle: a thread of job {current.job.id} is still running "
                        f"{self.settings.timeout_grace:g} s after its timeout",
                        code=EXIT_RECYCLE,
                    )

    def _time_out(self, job: ClaimedJob) -> None:
        definition = registry.find(job.name)
        limit = definition.options.timeout if definition is not None else None
        error = JobTimeoutError(f"the job ran longer than its timeout of {limit or 0:g} s")
        outcome = execution.decide_safely(job, error)
        if outcome.retry_at is not None:
            # Its thread may run on for the grace period: no retry may start before that ends.
            earliest = datetime.now(UTC) + timedelta(seconds=self.settings.timeout_grace)
            outcome = replace(outcome, retry_at=max(outcome.retry_at, earliest))
        execution.run_hooks(job, outcome)
        self._outcomes.put(job, outcome)
        log.warning("job_timed_out", **job_fields(job))

    # -- stopping ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._exit_code != EXIT_DECLARED_DEAD:
            # Prefetched jobs that have not started go back at once; running ones get the
            # shutdown timeout to finish, then are handed back too.
            self._pool.shutdown()
            self._release(only_unstarted=True)
            deadline = time.monotonic() + self.settings.shutdown_timeout
            while self._in_flight() and not self._stop_now and time.monotonic() < deadline:
                self._wake.wait(_TICK)
                self._wake.clear()
                self._check_signals()
            self._release(only_unstarted=False)
            self._write_remaining(
                deadline=time.monotonic() + max(5.0, self.settings.shutdown_timeout)
            )
            try:
                with self.jobqueue.transaction() as connection:
                    processes.deregister(connection, self.process_id)
            except Exception as error:
                log.warning("deregister_failed", process_id=self.process_id, error=str(error))
        self._finished.set()
        # In a subprocess os._exit follows; a worker run inside a process (tests, embedding)
        # must not leave its event loop, threads or pooled connections behind.
        self._pool.shutdown()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self.jobqueue.close()
        log.info(
            "process_stopped",
            kind="worker",
            process_id=self.process_id,
            reason=self._stop_reason,
            processed=self._processed,
            exit_code=self._exit_code,
        )

    def _release(self, *, only_unstarted: bool) -> None:
        with self._lock:
            candidates = list(self._executions.values())
        for current in candidates:
            if current.settle(only_if_unstarted=only_unstarted):
                # Outcome first, then forget it: reconciliation must see it in one or the other.
                self._outcomes.put(current.job, Outcome(RELEASED))
                with self._lock:
                    if self._executions.get(current.job.fence) is current:
                        del self._executions[current.job.fence]

    def _write_remaining(self, *, deadline: float) -> None:
        """Write every outstanding outcome, retrying through a database blip until ``deadline``;
        what cannot be written stays running until rescued as an orphan."""
        delay = 0.05
        while True:
            with self._cycle_lock:
                records = self._outcomes.take(force=True)
                if not records:
                    return
                try:
                    with self.jobqueue.transaction() as connection:
                        report = write_records(
                            connection, self.process_id, records, datetime.now(UTC)
                        )
                except Exception as error:  # retried until the deadline
                    if time.monotonic() > deadline:
                        log.error(
                            "job_outcome_not_recorded",
                            job_ids=[r.job.id for r in records],
                            error=str(error).splitlines()[0],
                        )
                        return
                    self._outcomes.requeue(records)
                    log.warning("job_outcome_write_retry", error=str(error).splitlines()[0])
                    report = None
            if report is not None:
                log_report(report)
            else:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


def _result(future: Future[Outcome], job: ClaimedJob) -> Outcome:
    try:
        return future.result()
    except BaseException as error:  # the loop itself failed the coroutine
        return execution.decide_safely(job, error)
