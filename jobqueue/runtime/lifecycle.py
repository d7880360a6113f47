"""What every long-running process does the same way: count stop signals (and wake on them),
wait for its database at start-up, and register itself.

Signal handlers only count: a handler that touched locks could deadlock against the thread it
interrupted, so the process's own loop reads the count.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from jobqueue.database import Database
from jobqueue.db_errors import is_transient
from jobqueue.errors import JobQueueError
from jobqueue.runtime.host import hostname
from jobqueue.store import processes

log = structlog.get_logger("jobqueue.lifecycle")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

#: How a worker process exits, which tells its supervisor what to do next.
EXIT_OK = 0
EXIT_STARTUP_FAILED = 69
EXIT_DECLARED_DEAD = 70
EXIT_RECYCLE = 75  # restart at once: it recycled itself on purpose

#: ``request(reason, now=..., code=...)`` of :class:`Stopping`, as handed to helper threads.
StopRequest = Callable[..., None]


class StopSignals:
    """Counts SIGTERM/SIGINT as one request to stop and SIGQUIT as two (stop at once).

    ``echo_window``: a repeat within that many seconds is not counted. Ctrl-C or `docker stop`
    signal the whole process group, and a supervisor forwards the same signal a moment later;
    its worker must not take the echo for a second request. ``wakeup``: also wake
    :meth:`pause` at once for these signals and for a child's exit (SIGCHLD), through a pipe
    that CPython's C-level handler writes to.
    """

    def __init__(self, *, echo_window: float = 0.0, wakeup: bool = False) -> None:
        self.count = 0
        self._echo_window = echo_window
        self._wants_wakeup = wakeup
        self._last = 0.0
        self._pipe: tuple[int, int] | None = None
        self._previous_fd = -1
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Install the handlers (only the main thread can; elsewhere this does nothing)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        if self._wants_wakeup:
            read_end, write_end = os.pipe()
            for end in (read_end, write_end):
                os.set_blocking(end, False)
            self._previous_fd = signal.set_wakeup_fd(write_end)
            # A handler of its own, or SIGCHLD (ignored by default) would never reach the pipe.
            self._previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _woken)
            self._pipe = (read_end, write_end)

    def uninstall(self) -> None:
        """Put back what was there: a process run inside a test or an embedding program must
        not leave its handlers or its pipe behind."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._pipe is not None:
            signal.set_wakeup_fd(self._previous_fd)
            for end in self._pipe:
                os.close(end)
            self._pipe = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        now = time.monotonic()
        if signum == signal.SIGQUIT:
            self.count += 2
        elif self._echo_window == 0 or now - self._last > self._echo_window:
            self.count += 1
        self._last = now

    def pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early for a signal or a child's exit."""
        if self._pipe is None:
            time.sleep(seconds)
            return
        read_end = self._pipe[0]
        select.select([read_end], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            os.read(read_end, 512)


def _woken(_signum: int, _frame: FrameType | None) -> None:
    """Nothing to do here: the wakeup pipe already woke the loop."""


def register_when_reachable(
    database: Database,
    *,
    process_id: str,
    kind: str,
    queues: Sequence[str] | None = None,
    supervisor_id: str | None = None,
    sleep: Callable[[float], None],
    stopping: Callable[[], bool],
    give_up_after: float | None = None,
) -> bool:
    """Check the schema and register this process, waiting out a database that is down or
    locked.

    ``jobrunner work`` is often started together with its database (a container stack, a
    reboot), so an unreachable database is waited for, with backoff, and logged; a schema or
    configuration error is raised at once. Returns False if a stop was requested meanwhile;
    raises the last error once ``give_up_after`` seconds have passed without success.
    """
    delay = 0.1
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while True:
        try:
            database.verify_schema()
            with database.transaction() as connection:
                register(
                    connection,
                    process_id=process_id,
                    kind=kind,
                    queues=queues,
                    supervisor_id=supervisor_id,
                )
            return True
        except (JobQueueError, DBAPIError) as error:
            if isinstance(error, IntegrityError) and _registered(database, process_id):
                # An earlier try committed and only its answer was lost: the row is ours.
                return True
            if not is_transient(error) or (deadline is not None and time.monotonic() > deadline):
                raise
            log.warning(
                "process_start_waiting",
                process_id=process_id,
                error=str(error).splitlines()[0],
                retry_in=delay,
            )
        sleep(delay)
        if stopping():
            return False
        delay = min(delay * 2, 5.0)


def _registered(database: Database, process_id: str) -> bool:
    with database.transaction(read_only=True) as connection:
        return processes.is_registered(connection, process_id)


def register(
    connection: Connection,
    *,
    process_id: str,
    kind: str,
    queues: Sequence[str] | None = None,
    supervisor_id: str | None = None,
) -> None:
    """Register this process (this host, this pid) in the caller's transaction."""
    processes.register(
        connection,
        process_id=process_id,
        kind=kind,
        hostname=hostname(),
        pid=os.getpid(),
        queues=queues,
        supervisor_id=supervisor_id,
    )


class Stopping:
    """Whether, why and how urgently a worker was asked to stop, and the exit code that goes
    with it. Requests come from signals (read by the main loop through :meth:`check_signals`),
    the heartbeat, the watchdog and the claim loop; the first reason and code stay."""

    def __init__(self, process_id: str, wake: threading.Event) -> None:
        self.process_id = process_id
        self.reason: str | None = None
        self.now = False
        self.exit_code = EXIT_OK
        self.signals = StopSignals(echo_window=1.0)
        self._wake = wake
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def request(self, reason: str, *, now: bool = False, code: int = EXIT_OK) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.exit_code = code
                log.info(
                    "process_stopping", process_id=self.process_id, reason=reason, immediate=now
                )
            if now:
                self.now = True
            self._wake.set()

    def check_signals(self) -> None:
        if self.signals.count >= 2:
            self.request("signal", now=True)
        elif self.signals.count == 1:
            self.request("signal")
