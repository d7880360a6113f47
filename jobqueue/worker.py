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
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

import structlog
from sqlalchemy.exc import DBAPIError
from ulid import ULID

from jobqueue import execution, processes, store
from jobqueue.db import mask_url
from jobqueue.errors import JobQueueError
from jobqueue.execution import JobTimeoutError, Outcome
from jobqueue.listener import NotifyListener
from jobqueue.queue import JobQueue
from jobqueue.registry import registry
from jobqueue.settings import MIN_POLL_INTERVAL, WorkerSettings
from jobqueue.store import ClaimedJob
from jobqueue.writer import RELEASED, OutcomeWriter, is_transient

log = structlog.get_logger("jobqueue.worker")

EXIT_OK = 0
EXIT_STARTUP_FAILED = 69
EXIT_DECLARED_DEAD = 70
EXIT_RECYCLE = 75
_TICK = 0.1  # longest the main loop sleeps before looking at signal flags again


@dataclass
class Execution:
    """One attempt in progress. ``settle`` decides, once, who records its outcome: the job's
    own thread, the timeout watchdog, or a shutdown release."""

    job: ClaimedJob
    deadline: float | None = None
    timed_out_at: float | None = None
    _settled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self) -> bool:
        with self._lock:
            if self._settled:
                return False
            self._settled = True
            return True


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings.validate()
        self.process_id = settings.process_id or str(ULID())
        self.queues = settings.queues
        self.jobqueue = JobQueue(
            settings.database_url,
            pool_size=settings.threads + 3,
            sqlite_synchronous=settings.sqlite_synchronous,  # type: ignore[arg-type]
        )
        self.writer = OutcomeWriter(self.jobqueue, self.process_id)
        self._pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="jobqueue-job")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executions: dict[str, Execution] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._finished = threading.Event()  # set when the process is about to exit
        self._stop_reason: str | None = None
        self._stop_now = False
        self._signals = 0
        self._exit_code = EXIT_OK
        self._processed = 0
        self._parent = os.getppid()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        self._install_signal_handlers()
        try:
            self.jobqueue.verify_schema()
            with self.jobqueue.transaction() as connection:
                processes.register(
                    connection,
                    process_id=self.process_id,
                    kind="worker",
                    queues=self.queues,
                    supervisor_id=self.settings.supervisor_id,
                )
        except (JobQueueError, DBAPIError) as error:
            log.error("process_start_failed", process_id=self.process_id, error=str(error))
            return EXIT_STARTUP_FAILED
        log.info(
            "process_started",
            kind="worker",
            process_id=self.process_id,
            pid=os.getpid(),
            database=mask_url(self.jobqueue.database_url),
            queues=self.queues or "*",
            threads=self.settings.threads,
            jobs=registry.names(),
        )
        self.writer.start()
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

    def request_stop(self, reason: str, *, now: bool = False, code: int = EXIT_OK) -> None:
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

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self._signals += 1 if signum != signal.SIGQUIT else 2

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, on_stop)

    def _check_signals(self) -> None:
        if self._signals >= 2:
            self.request_stop("signal", now=True)
        elif self._signals == 1:
            self.request_stop("signal")

    # -- claiming ----------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        idle_wait = MIN_POLL_INTERVAL
        db_error_delay = 0.1
        next_due: datetime | None = None
        drained = True  # the last claim took everything that was due: look before locking
        while True:
            self._check_signals()
            if self._stop_reason is not None:
                return
            free = self._free_slots()
            if free <= 0:
                with self._slot_freed:
                    self._slot_freed.wait(_TICK)
                continue
            try:
                claimed, next_due = self._claim(free, look_first=drained)
                db_error_delay = 0.1
            except Exception as error:
                if not is_transient(error):
                    log.error("claim_failed", error=repr(error))
                else:
                    log.warning("claim_failed", error=str(error).splitlines()[0])
                self._sleep(db_error_delay)
                db_error_delay = min(db_error_delay * 2, 5.0)
                continue
            drained = len(claimed) < free
            if claimed:
                idle_wait = MIN_POLL_INTERVAL
                for job in claimed:
                    self._dispatch(job)
                continue
            if self.settings.burst and self._burst_done():
                self.request_stop("burst: nothing due and nothing running")
                return
            wait = idle_wait
            if next_due is not None:
                wait = min(wait, max(0.0, (next_due - datetime.now(UTC)).total_seconds()))
            self._sleep(wait)
            idle_wait = min(idle_wait * 2, self.settings.poll_interval)

    def _claim(self, free: int, *, look_first: bool) -> tuple[list[ClaimedJob], datetime | None]:
        now = datetime.now(UTC)
        if look_first:
            # A cheap read first, so an idle poll never takes the write lock (SQLite) or
            # row locks; it also tells when the next scheduled job is due.
            with self.jobqueue.transaction(read_only=True) as connection:
                next_due = store.next_due_at(connection, self.queues)
            if next_due is None or next_due > now:
                return [], next_due
        with self.jobqueue.transaction() as connection:
            claimed = store.claim_jobs(
                connection, process_id=self.process_id, queues=self.queues, limit=free, now=now
            )
        return claimed, None

    def _burst_done(self) -> bool:
        """Nothing running here or anywhere in our queues: a job held by a process that died
        will be rescued and is still work for this burst."""
        if self._busy():
            return False
        try:
            with self.jobqueue.transaction(read_only=True) as connection:
                return store.running_count(connection, self.queues) == 0
        except Exception:
            return False

    def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early on NOTIFY, a freed slot or a stop request."""
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

    def _free_slots(self) -> int:
        with self._lock:
            return self.settings.threads - len(self._executions)

    def _busy(self) -> int:
        with self._lock:
            return len(self._executions)

    def _dispatch(self, job: ClaimedJob) -> None:
        definition = registry.find(job.name)
        current = Execution(job)
        if definition is not None and definition.options.timeout and not definition.is_async:
            current.deadline = time.monotonic() + definition.options.timeout
        with self._lock:
            self._executions[job.id] = current
        log.debug(
            "job_claimed", job_id=job.id, job_name=job.name, queue=job.queue, attempt=job.attempts
        )
        if definition is not None and definition.is_async:
            future = asyncio.run_coroutine_threadsafe(execution.run_async(job), self._event_loop())
            future.add_done_callback(lambda f: self._finish(current, _result(f, job)))
        else:
            self._pool.submit(self._run_in_thread, current)

    def _run_in_thread(self, current: Execution) -> None:
        outcome = execution.run_sync(current.job)
        self._finish(current, outcome)

    def _finish(self, current: Execution, outcome: Outcome) -> None:
        if current.settle():
            execution.run_hooks(current.job, outcome)
            self.writer.put(current.job, outcome)
        with self._slot_freed:
            self._executions.pop(current.job.id, None)
            self._processed += 1
            processed = self._processed
            self._slot_freed.notify_all()
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
                with self.jobqueue.transaction() as connection:
                    alive = processes.heartbeat(connection, self.process_id)
            except Exception as error:
                log.warning(
                    "heartbeat_failed", process_id=self.process_id, error=str(error).splitlines()[0]
                )
                continue
            if not alive:
                log.error("process_found_declared_dead", process_id=self.process_id)
                self.request_stop("declared dead", now=True, code=EXIT_DECLARED_DEAD)
                return
            limit = self.settings.max_memory_mb
            if limit is not None and (rss := resident_memory_mb()) > limit:
                self.request_stop(f"recycle: memory {rss:.0f} MB > {limit:g} MB", code=EXIT_RECYCLE)

    def _watchdog_loop(self) -> None:
        """Fail sync jobs past their timeout at once; recycle if their thread will not end."""
        while not self._finished.wait(0.05):
            now = time.monotonic()
            with self._lock:
                running = list(self._executions.values())
            for current in running:
                if current.deadline is None or now < current.deadline:
                    continue
                if current.timed_out_at is None:
                    current.timed_out_at = now
                    timeout = current.deadline - now
                    if current.settle():
                        definition = registry.find(current.job.name)
                        limit = definition.options.timeout if definition else timeout
                        error = JobTimeoutError(
                            f"the job ran longer than its timeout of {limit:g} s"
                        )
                        outcome = execution.decide(current.job, error)
                        execution.run_hooks(current.job, outcome)
                        self.writer.put(current.job, outcome)
                        log.warning(
                            "job_timed_out",
                            job_id=current.job.id,
                            job_name=current.job.name,
                            queue=current.job.queue,
                            attempt=current.job.attempts,
                        )
                elif now - current.timed_out_at > self.settings.timeout_grace:
                    self.request_stop(
                        f"recycle: a thread of job {current.job.id} is still running "
                        f"{self.settings.timeout_grace:g} s after its timeout",
                        code=EXIT_RECYCLE,
                    )

    # -- stopping ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._exit_code != EXIT_DECLARED_DEAD:
            deadline = time.monotonic() + self.settings.shutdown_timeout
            while self._busy() and not self._stop_now and time.monotonic() < deadline:
                with self._slot_freed:
                    self._slot_freed.wait(_TICK)
                self._check_signals()
            with self._lock:
                leftovers = list(self._executions.values())
            for current in leftovers:
                if current.settle():
                    self.writer.put(current.job, Outcome(RELEASED))
            self.writer.flush(timeout=max(5.0, self.settings.shutdown_timeout))
            try:
                with self.jobqueue.transaction() as connection:
                    processes.deregister(connection, self.process_id)
            except Exception as error:
                log.warning("deregister_failed", process_id=self.process_id, error=str(error))
        self._finished.set()
        log.info(
            "process_stopped",
            kind="worker",
            process_id=self.process_id,
            reason=self._stop_reason,
            processed=self._processed,
            exit_code=self._exit_code,
        )


def _result(future: Future[Outcome], job: ClaimedJob) -> Outcome:
    try:
        return future.result()
    except BaseException as error:
        return execution.decide(job, error)


def resident_memory_mb() -> float:
    """Current resident set size in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def run_worker_process(settings: WorkerSettings) -> None:
    """Entry point of a worker subprocess: import the apps, run, and exit hard.

    ``os._exit`` because pool threads still running a job (released at shutdown) would
    otherwise hold the interpreter open.
    """
    from jobqueue.apps import import_apps
    from jobqueue.log import configure_logging

    configure_logging(settings.log_level)
    code = EXIT_STARTUP_FAILED
    try:
        import_apps(settings.apps)
        code = Worker(settings).run()
    except Exception as error:
        log.error("process_crashed", error=repr(error))
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
