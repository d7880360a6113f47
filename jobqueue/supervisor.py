"""``jobrunner work``: a supervisor that starts worker processes, restarts those that die, runs
the maintenance duties, and passes signals on.

Workers are started with ``subprocess`` (``python -m jobqueue._worker_main``), never ``fork``:
no inherited pooled connections or threads. Each child gets a fresh process id from the
supervisor, so when a child exits the supervisor rescues its jobs at once instead of waiting
for its heartbeat to expire.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from ulid import ULID

from jobqueue import maintenance, processes
from jobqueue._worker_main import ForkedProcess, start_worker_process
from jobqueue.db import mask_url
from jobqueue.queue import JobQueue
from jobqueue.schedule import RecurringTask, Scheduler, tasks_from_registry
from jobqueue.schema import SUCCEEDED
from jobqueue.settings import WorkerSettings
from jobqueue.worker import EXIT_OK, EXIT_RECYCLE

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


def _note_child_exit(_signum: int, _frame: FrameType | None) -> None:
    """Nothing to do here: the wakeup pipe already woke the loop, which reaps the child."""


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
        self._signals = 0
        self._stopping = False
        self._forwarded_quit = False
        self._stop_deadline = 0.0
        self._wakeup: tuple[int, int] | None = None  # (read, write) ends of the wakeup pipe
        self._previous_wakeup_fd = -1
        self._previous_handlers: dict[int, Any] = {}
        # Until then (database clock), heartbeat ages are not trusted: see _maintain.
        self._ages_trusted_from = datetime.min.replace(tzinfo=UTC)
        self._contact_failures = 0
        self._next_runs_prune = 0.0  # monotonic time of the next pruning of recurring runs
        tasks = tasks_from_registry() + settings.recurring
        self.scheduler = Scheduler(self.jobqueue, tasks) if tasks else None

    def run(self) -> int:
        self._install_signal_handlers()
        try:
            return self._run()
        finally:
            self._uninstall_signal_handlers()

    def _run(self) -> int:
        def register() -> None:
            with self.jobqueue.transaction() as connection:
                processes.register(connection, process_id=self.process_id, kind="supervisor")

        if not processes.start_when_reachable(
            self.jobqueue,
            register,
            process_id=self.process_id,
            sleep=self._sleep_unless_signalled,
            stopping=lambda: self._signals > 0,
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
        self._maintain()
        next_maintenance = time.monotonic()
        try:
            while True:
                self._handle_signals()
                self._reap()
                if all(
                    child.process is None and (child.done or self._stopping)
                    for child in self.children
                ):
                    break
                now = time.monotonic()
                if self._stopping and now > self._stop_deadline:
                    self._kill_remaining()
                if not self._stopping:
                    self._restart_due(now)
                if self.scheduler is not None and not self._stopping:
                    self._schedule()
                if now >= next_maintenance:
                    next_maintenance = now + self.settings.heartbeat_interval
                    self._maintain()
                self._pause(_TICK)
        finally:
            self._maintain()
            try:
                with self.jobqueue.transaction() as connection:
                    processes.deregister(connection, self.process_id)
            except Exception as error:
                log.warning("deregister_failed", process_id=self.process_id, error=str(error))
            log.info("process_stopped", kind="supervisor", process_id=self.process_id)
            self.jobqueue.close()
        return 0

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

    def _install_signal_handlers(self) -> None:
        """Count stop signals, and wake the loop at once for them and for a child's exit.

        A pipe is the signals' wakeup fd (CPython writes to it from its C-level handler), and
        the loop waits on it instead of sleeping a whole tick: a finished ``--burst`` worker or
        a crashed one is seen within a millisecond, not up to a tenth of a second later.
        """
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self._signals += 2 if signum == signal.SIGQUIT else 1

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self._previous_handlers[signum] = signal.signal(signum, on_signal)
        read_end, write_end = os.pipe()
        for end in (read_end, write_end):
            os.set_blocking(end, False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_end)
        # A handler of its own, or SIGCHLD (ignored by default) would never reach the pipe.
        self._previous_handlers[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _note_child_exit)
        self._wakeup = (read_end, write_end)

    def _uninstall_signal_handlers(self) -> None:
        """Put back what was there: a supervisor run inside a test or an embedding process
        must not leave its handlers or its pipe behind."""
        if self._wakeup is None:
            return
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        for end in self._wakeup:
            os.close(end)
        self._wakeup = None

    def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early for a signal or a child's exit."""
        if self._wakeup is None:
            time.sleep(seconds)
            return
        read_end = self._wakeup[0]
        select.select([read_end], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            os.read(read_end, 512)

    def _sleep_unless_signalled(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._signals == 0 and (remaining := deadline - time.monotonic()) > 0:
            self._pause(min(_TICK, remaining))

    def _handle_signals(self) -> None:
        if self._signals == 0:
            return
        if not self._stopping:
            self._stopping = True
            # Children get their shutdown timeout, plus a margin to release and deregister.
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout + 10
            log.info("process_stopping", kind="supervisor", process_id=self.process_id)
            self._send(signal.SIGTERM)
        if self._signals >= 2 and not self._forwarded_quit:
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

    def _maintain(self) -> None:
        """Heartbeat, declare dead processes, rescue their jobs, prune old ones.

        The heartbeat and the dead-process check share one transaction, so the check knows how
        long this supervisor itself was out of contact: a failed heartbeat, or a wait for a lock
        that held everyone up. If its own previous heartbeat is more than two intervals old,
        the rows of live processes went stale along with it; for one dead threshold from now,
        only vanished pids count as dead, which gives every live process time to heartbeat
        again. Without this, the first pass after an outage would declare every worker dead and
        run their jobs twice.
        """
        interval, threshold = self.settings.heartbeat_interval, self.settings.dead_threshold
        try:
            with self.jobqueue.transaction() as connection:
                previous, now = processes.renew(connection, self.process_id)
                if previous is None:
                    # A supervisor holds no jobs: if it was reaped, it simply registers again.
                    processes.register(connection, process_id=self.process_id, kind="supervisor")
                gap = (now - previous).total_seconds() if previous is not None else None
                if gap is None or gap > 2 * interval:
                    self._ages_trusted_from = now + timedelta(seconds=threshold)
                trusted = now >= self._ages_trusted_from
                maintenance.declare_dead(
                    connection, threshold_seconds=threshold if trusted else None
                )
        except Exception as error:  # the next round will retry
            self._contact_failures += 1
            log.warning(
                "heartbeat_failed", process_id=self.process_id, error=str(error).splitlines()[0]
            )
            return
        if gap is None or gap > 2 * interval:
            log.info(
                "database_contact_restored",
                process_id=self.process_id,
                out_of_contact_seconds=round(gap, 3) if gap is not None else None,
                failed_heartbeats=self._contact_failures,
                heartbeat_ages_trusted_in=threshold,
            )
        self._contact_failures = 0
        try:
            maintenance.rescue_orphans(self.jobqueue)
            # A few small batches per pass: pruning never holds up claiming for long.
            self.jobqueue.admin.prune(
                status=SUCCEEDED, older_than=self.settings.retention, max_batches=10
            )
            if self.scheduler is not None and time.monotonic() >= self._next_runs_prune:
                self._next_runs_prune = time.monotonic() + 60
                self.scheduler.prune_runs()
        except Exception as error:  # the next round will retry
            log.warning("maintenance_failed", error=str(error).splitlines()[0])
