"""``jobrunner work``: a supervisor that starts worker processes, restarts those that die, runs
the maintenance duties and the scheduler, and passes signals on.

How a worker is started (forked while the supervisor is single-threaded, else a fresh
interpreter) is :mod:`jobqueue.runtime.spawn`'s. Each child gets a fresh process id from the
supervisor, so when a child exits the supervisor rescues its jobs at once instead of waiting
for its heartbeat to expire.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import structlog
from ulid import ULID

from jobqueue.database import Database
from jobqueue.db import mask_url
from jobqueue.queue import JobQueue
from jobqueue.recurring import RecurringTask, tasks_from_registry
from jobqueue.runtime import maintenance
from jobqueue.runtime.lifecycle import StopSignals, register_when_reachable
from jobqueue.runtime.maintenance import MaintenancePass
from jobqueue.runtime.scheduler import Scheduler
from jobqueue.runtime.spawn import ForkedProcess, start_worker_process
from jobqueue.runtime.worker import EXIT_OK, EXIT_RECYCLE
from jobqueue.settings import WorkerSettings
from jobqueue.store import due, processes

log = structlog.get_logger("jobqueue.supervisor")

_TICK = 0.1
_MAX_RESTART_DELAY = 30.0


@dataclass
class Child:
    settings: WorkerSettings
    process: ForkedProcess | subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_delay: float = 0.0
    restart_at: float = 0.0
    done: bool = False  # burst: exited cleanly, not restarted


@dataclass
class SupervisorSettings:
    groups: list[tuple[WorkerSettings, int]]  # (worker settings, number of processes)
    database_url: str
    heartbeat_interval: float
    dead_threshold: float
    shutdown_timeout: float
    burst: bool = False
    #: How long succeeded jobs are kept before maintenance prunes them (0: at the next pass).
    retention: timedelta = timedelta(days=1)
    #: Recurring tasks from pyproject.toml; those declared with @job(cron=...) are added.
    recurring: list[RecurringTask] = field(default_factory=list)
    process_id: str = field(default_factory=lambda: str(ULID()))
    #: How long to wait at start-up for a database that cannot be reached (None: for ever).
    startup_timeout: float | None = None


class Supervisor:
    def __init__(self, settings: SupervisorSettings) -> None:
        self.settings = settings
        self.process_id = settings.process_id
        first = settings.groups[0][0]
        self.jobqueue = JobQueue(
            settings.database_url,
            sqlite_synchronous=first.sqlite_synchronous,  # type: ignore[arg-type]
            busy_timeout_ms=int(first.sqlite_busy_timeout * 1000),
        )
        self.children: list[Child] = []
        # Counts stop signals and wakes the loop at once for them and for a child's exit: a
        # finished ``--burst`` worker or a crashed one is seen within a millisecond.
        self._signals = StopSignals(wakeup=True)
        self._stopping = False
        self._forwarded_quit = False
        self._stop_deadline = 0.0
        tasks = tasks_from_registry() + settings.recurring
        self.scheduler = Scheduler(self.jobqueue, tasks) if tasks else None
        self.maintenance = MaintenancePass(
            self.jobqueue,
            process_id=self.process_id,
            heartbeat_interval=settings.heartbeat_interval,
            dead_threshold=settings.dead_threshold,
            retention=settings.retention,
            scheduler=self.scheduler,
        )

    def run(self) -> int:
        self._signals.install()
        try:
            return self._run()
        finally:
            self._signals.uninstall()

    def _run(self) -> int:
        if not register_when_reachable(
            self.jobqueue,
            give_up_after=self.settings.startup_timeout,
            process_id=self.process_id,
            kind="supervisor",
            sleep=self._sleep_unless_signalled,
            stopping=lambda: self._signals.count > 0,
        ):
            self.jobqueue.close()
            return 0  # stopped by a signal while waiting for the database
        log.info(
            "process_started",
            kind="supervisor",
            process_id=self.process_id,
            pid=os.getpid(),
            database=mask_url(self.settings.database_url),
            workers=sum(count for _, count in self.settings.groups),
            burst=self.settings.burst,
        )
        # Workers start first: their interpreter start-up overlaps the first maintenance pass,
        # which removes the rows of this host's dead pids at once (after a power loss or
        # kill -9) and rescues their jobs.
        for worker_settings, count in self.settings.groups:
            for _ in range(count):
                child = Child(replace(worker_settings, supervisor_id=self.process_id))
                self.children.append(child)
                self._spawn(child)
        self.maintenance.run()
        try:
            self._supervise()
        finally:
            self.maintenance.run()
            try:
                with self.jobqueue.transaction() as connection:
                    processes.deregister(connection, self.process_id)
            except Exception as error:
                log.warning("deregister_failed", process_id=self.process_id, error=str(error))
            log.info(
                "process_stopped",
                kind="supervisor",
                process_id=self.process_id,
                **(_scheduled_later(self.jobqueue) if self.settings.burst else {}),
            )
            self.jobqueue.close()
        return 0

    def _supervise(self) -> None:
        """Until every child is done (burst) or stopped: pass signals on, reap and restart
        children, fire recurring tasks, and run maintenance every heartbeat interval."""
        next_maintenance = time.monotonic()
        while True:
            self._handle_signals()
            self._reap()
            if all(
                child.process is None and (child.done or self._stopping) for child in self.children
            ):
                return
            now = time.monotonic()
            if self._stopping and now > self._stop_deadline:
                self._kill_remaining()
            if not self._stopping:
                self._restart_due(now)
            if self.scheduler is not None and not self._stopping:
                self._schedule()
            if now >= next_maintenance:
                next_maintenance = now + self.settings.heartbeat_interval
                self.maintenance.run()
            self._signals.pause(_TICK)

    # -- children ----------------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        child.settings = replace(child.settings, process_id=str(ULID()))
        self.jobqueue.close()  # a forked child must not share our connections
        child.process = start_worker_process(child.settings)
        child.started_at = time.monotonic()
        log.info(
            "worker_started",
            process_id=child.settings.process_id,
            pid=child.process.pid,
            queues=child.settings.queues or "*",
            threads=child.settings.threads,
        )

    def _reap(self) -> None:
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            code = child.process.returncode
            process_id = child.settings.process_id
            child.process = None
            level = log.info if code in (EXIT_OK, EXIT_RECYCLE) else log.warning
            level("worker_exited", process_id=process_id, exit_code=code)
            self._forget(process_id)
            if self.settings.burst and code == EXIT_OK:
                child.done = True
                continue
            # Restart: at once after a recycle or a long life, backing off if it keeps dying
            # right after starting (a broken deploy, an unreachable database).
            lived = time.monotonic() - child.started_at
            if code == EXIT_RECYCLE or lived > 10:
                child.restart_delay = 0.0
            else:
                child.restart_delay = min(max(child.restart_delay * 2, 0.25), _MAX_RESTART_DELAY)
            child.restart_at = time.monotonic() + child.restart_delay

    def _restart_due(self, now: float) -> None:
        for child in self.children:
            if child.process is None and not child.done and now >= child.restart_at:
                self._spawn(child)

    def _forget(self, process_id: str | None) -> None:
        """The child is gone: drop its row and rescue whatever it still held."""
        if process_id is None:
            return
        try:
            with self.jobqueue.transaction() as connection:
                processes.delete_process(connection, process_id)
            maintenance.rescue_orphans(self.jobqueue)
        except Exception as error:
            log.warning("rescue_failed", error=str(error).splitlines()[0])

    def _kill_remaining(self) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                log.warning(
                    "worker_killed", process_id=child.settings.process_id, pid=child.process.pid
                )
                child.process.kill()

    # -- signals -----------------------------------------------------------------------------

    def _sleep_unless_signalled(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._signals.count == 0 and (remaining := deadline - time.monotonic()) > 0:
            self._signals.pause(min(_TICK, remaining))

    def _handle_signals(self) -> None:
        if self._signals.count == 0:
            return
        if not self._stopping:
            self._stopping = True
            # Children get their shutdown timeout, plus a margin to release and deregister.
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout + 10
            log.info("process_stopping", kind="supervisor", process_id=self.process_id)
            self._send(signal.SIGTERM)
        if self._signals.count >= 2 and not self._forwarded_quit:
            self._forwarded_quit = True
            self._send(signal.SIGQUIT)

    def _send(self, signum: int) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signum)

    # -- duties ------------------------------------------------------------------------------

    def _schedule(self) -> None:
        assert self.scheduler is not None
        try:
            self.scheduler.tick()
        except Exception as error:  # the next tick retries; occurrences are never doubled
            log.warning("scheduler_failed", error=str(error).splitlines()[0])


def _scheduled_later(database: Database) -> dict[str, object]:
    """For ``--burst``, whose last line should not let a job scheduled for later pass
    unnoticed: how many are left pending and when the first is due."""
    try:
        with database.transaction(read_only=True) as connection:
            count, first = due.scheduled_later(connection, datetime.now(UTC))
    except Exception:  # the line is informative; a database gone by now must not fail exit
        return {}
    return {"scheduled_later": count, "next_due_at": first.isoformat() if first else None}
