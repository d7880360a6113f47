"""A worker's heartbeat thread: prove it is alive, stop if it was declared dead, hand back jobs
it holds without knowing, pass operators' cancellations on, and recycle past its memory limit.
"""

from __future__ import annotations

import os
import threading
import time

import structlog

from jobqueue import context
from jobqueue.database import Database
from jobqueue.runtime.host import resident_memory_mb
from jobqueue.runtime.in_flight import InFlight
from jobqueue.runtime.lifecycle import EXIT_DECLARED_DEAD, EXIT_RECYCLE, StopRequest
from jobqueue.settings import WorkerSettings
from jobqueue.store import attempts, processes

log = structlog.get_logger("jobqueue.worker")


class Heartbeat:
    def __init__(
        self,
        database: Database,
        *,
        process_id: str,
        settings: WorkerSettings,
        in_flight: InFlight,
        request_stop: StopRequest,
        finished: threading.Event,
    ) -> None:
        self.database = database
        self.process_id = process_id
        self.settings = settings
        self.in_flight = in_flight
        self.request_stop = request_stop
        self.finished = finished
        #: Monotonic time of the last committed heartbeat (the claim loop beats too).
        self.last_beat = 0.0
        self._parent = os.getppid()

    def due(self, now: float) -> bool:
        return now - self.last_beat >= self.settings.heartbeat_interval

    def run(self) -> None:
        while not self.finished.wait(self.settings.heartbeat_interval):
            if self.settings.supervisor_id and os.getppid() != self._parent:
                self.request_stop("the supervisor exited")
            try:
                beat = time.monotonic()
                with self.database.transaction() as connection:
                    alive = processes.heartbeat(connection, self.process_id)
                self.last_beat = beat
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
                self.reconcile()
                self.pass_on_cancellations()
            except Exception as error:  # the next heartbeat tries again
                log.warning("reconcile_failed", error=str(error).splitlines()[0])
            limit = self.settings.max_memory_mb
            if limit is not None and (rss := resident_memory_mb()) > limit:
                self.request_stop(f"recycle: memory {rss:.0f} MB > {limit:g} MB", code=EXIT_RECYCLE)

    def reconcile(self) -> None:
        """Hand back jobs the database says we hold but this process does not know about.

        That happens when a claim's COMMIT reached the database but its answer was lost with
        the connection: without this, such a job would stay ``running`` behind a live worker
        (whose heartbeat keeps it from being rescued) for ever.
        """
        with self.in_flight.cycle_lock:
            with self.database.transaction(read_only=True) as connection:
                held = attempts.held_jobs(connection, self.process_id)
            known = self.in_flight.known_fences()
            strays = [fence for fence in held if fence not in known]
            if not strays:
                return
            with self.database.transaction() as connection:
                released = len(
                    attempts.release_jobs(connection, process_id=self.process_id, fences=strays)
                )
        log.warning(
            "jobs_reconciled",
            process_id=self.process_id,
            released=released,
            job_ids=[job_id for job_id, _ in strays],
        )

    def pass_on_cancellations(self) -> None:
        """Tell running jobs an operator asked them to stop (see jobqueue.cancel_requested)."""
        running = self.in_flight.started_ids()
        if not running:
            return
        with self.database.transaction(read_only=True) as connection:
            requested = attempts.cancellation_requests(connection, running)
        for job_id in requested:
            context.request_cancel(job_id)
