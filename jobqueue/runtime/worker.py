"""A worker process: claims due jobs in batches, runs them on threads (and ``async def`` jobs on
an event loop), and stops gracefully. Its heartbeat and its timeout watchdog run on threads of
their own (:mod:`~jobqueue.runtime.heartbeat`, :mod:`~jobqueue.runtime.watchdog`).

Signals (SIGTERM/SIGINT: finish running jobs within the shutdown timeout, release the rest; a
second one, or SIGQUIT: release at once) only set flags that the main loop reads, because a
handler that touched locks could deadlock against the thread it interrupted.
"""

from __future__ import annotations

import os
import threading
import time

import structlog
from sqlalchemy.exc import DBAPIError
from ulid import ULID

from jobqueue.database import Database
from jobqueue.db import mask_url, supports_notify
from jobqueue.errors import JobQueueError
from jobqueue.registry import registry
from jobqueue.runtime.claim_loop import TICK, ClaimLoop
from jobqueue.runtime.dispatcher import Dispatcher
from jobqueue.runtime.heartbeat import Heartbeat
from jobqueue.runtime.in_flight import MAX_PREFETCH, InFlight
from jobqueue.runtime.lifecycle import (
    EXIT_DECLARED_DEAD,
    EXIT_OK,
    EXIT_RECYCLE,
    EXIT_STARTUP_FAILED,
    Stopping,
    register_when_reachable,
)
from jobqueue.runtime.listener import NotifyListener
from jobqueue.runtime.outcomes import write_remaining
from jobqueue.runtime.watchdog import Watchdog
from jobqueue.settings import WorkerSettings
from jobqueue.store import processes

__all__ = [
    "EXIT_DECLARED_DEAD",
    "EXIT_OK",
    "EXIT_RECYCLE",
    "EXIT_STARTUP_FAILED",
    "MAX_PREFETCH",
    "Worker",
]

log = structlog.get_logger("jobqueue.worker")


class Worker:
    """Claims up to ``threads + prefetch`` jobs (see :func:`claim_limits`) and writes finished
    outcomes in the same transaction as the next claim."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings.validate()
        self.process_id = settings.process_id or str(ULID())
        self.queues = settings.queues
        self.jobqueue = Database(
            settings.database_url,
            pool_size=settings.threads + 3,
            sqlite_synchronous=settings.sqlite_synchronous,  # type: ignore[arg-type]
            busy_timeout_ms=int(settings.sqlite_busy_timeout * 1000),
        )
        self.in_flight = InFlight(batch=settings.threads)
        self.stop = Stopping(self.process_id, self.in_flight.wake)
        self._dispatcher = Dispatcher(
            self.in_flight,
            self.jobqueue,
            process_id=self.process_id,
            threads=settings.threads,
            on_finished=self._finished_one,
        )
        self._finished = threading.Event()  # set when the process is about to exit
        self._heartbeat = Heartbeat(
            self.jobqueue,
            process_id=self.process_id,
            settings=self.settings,
            in_flight=self.in_flight,
            request_stop=self.stop.request,
            finished=self._finished,
        )
        self._watchdog = Watchdog(
            self.in_flight,
            timeout_grace=self.settings.timeout_grace,
            request_stop=self.stop.request,
            finished=self._finished,
        )
        self.claim_loop = ClaimLoop(
            self.jobqueue,
            process_id=self.process_id,
            settings=self.settings,
            in_flight=self.in_flight,
            stop=self.stop,
            dispatcher=self._dispatcher,
            heartbeat=self._heartbeat,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        # Installed for good, never put back: a worker process ends with os._exit, and a stop
        # signal that arrived after the handlers were put back would kill it by the default
        # action (exit -15) instead of letting it exit 0.
        self.stop.signals.install()
        if not self._register():
            return self.stop.exit_code if self.stop.requested else EXIT_STARTUP_FAILED
        return self._run()

    def _run(self) -> int:
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
        for target, name in ((self._heartbeat.run, "heartbeat"), (self._watchdog.run, "watchdog")):
            threading.Thread(target=target, name=f"jobqueue-{name}", daemon=True).start()
        if supports_notify(self.jobqueue.dialect):
            wake = self.in_flight.wake.set
            NotifyListener(
                self.jobqueue.database_url,
                self.queues,
                wake,
                self._finished,
                listen_url=self.settings.listen_url,
            ).start()
        try:
            self.claim_loop.run()
        finally:
            self._shutdown()
        return self.stop.exit_code

    def _register(self) -> bool:
        try:
            registered = register_when_reachable(
                self.jobqueue,
                process_id=self.process_id,
                kind="worker",
                queues=self.queues,
                supervisor_id=self.settings.supervisor_id,
                sleep=self.claim_loop.sleep,
                stopping=lambda: self.stop.requested,
            )
            self._heartbeat.last_beat = time.monotonic()
            return registered
        except (JobQueueError, DBAPIError) as error:
            log.error("process_start_failed", process_id=self.process_id, error=str(error))
            return False

    def request_stop(self, reason: str, *, now: bool = False, code: int = EXIT_OK) -> None:
        self.stop.request(reason, now=now, code=code)

    def _finished_one(self, processed: int) -> None:
        if self.settings.max_jobs is not None and processed >= self.settings.max_jobs:
            self.stop.request(f"recycle: processed {processed} jobs", code=EXIT_RECYCLE)

    # -- stopping ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self.stop.exit_code != EXIT_DECLARED_DEAD:
            self._hand_back()
        self._finished.set()
        # In a subprocess os._exit follows; a worker run inside a process (tests, embedding)
        # must not leave its event loop, threads or pooled connections behind.
        self._dispatcher.close()
        self.jobqueue.close()
        log.info(
            "process_stopped",
            kind="worker",
            process_id=self.process_id,
            reason=self.stop.reason,
            processed=self.in_flight.processed,
            exit_code=self.stop.exit_code,
        )

    def _hand_back(self) -> None:
        """Prefetched jobs that have not started go back at once; running ones get the
        shutdown timeout to finish, then are handed back too; then this process deregisters."""
        self._dispatcher.stop_taking()
        self.in_flight.release(only_unstarted=True)
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self.in_flight.count() and not self.stop.now and time.monotonic() < deadline:
            self.in_flight.wake.wait(TICK)
            self.in_flight.wake.clear()
            self.stop.check_signals()
        self.in_flight.release(only_unstarted=False)
        write_remaining(
            self.jobqueue,
            self.process_id,
            self.in_flight.outcomes,
            self.in_flight.cycle_lock,
            deadline=time.monotonic() + max(5.0, self.settings.shutdown_timeout),
        )
        try:
            with self.jobqueue.transaction() as connection:
                processes.deregister(connection, self.process_id)
        except Exception as error:
            log.warning("deregister_failed", process_id=self.process_id, error=str(error))
