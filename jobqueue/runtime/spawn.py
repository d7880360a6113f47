"""How the supervisor starts a worker process: forked from the supervisor, or as
``python -m jobqueue.runtime.spawn`` with its settings as JSON on standard input.

Forking is the default where it is safe: the child starts with the supervisor's imports
(SQLAlchemy, the apps) already done, which saves about half a second per worker start, and a
crashed worker is back that much sooner. A process with more than one thread cannot be forked
safely (a lock held by another thread stays held forever in the child), so a supervisor whose
apps started threads at import starts fresh interpreters instead, as it does where there is no
``fork`` (Windows).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import structlog

from jobqueue.queue import forget_default_connections
from jobqueue.runtime.worker import EXIT_STARTUP_FAILED, Worker
from jobqueue.settings import WorkerSettings

log = structlog.get_logger("jobqueue.worker")


class ForkedProcess:
    """The part of ``subprocess.Popen`` the supervisor uses, for a forked child."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_worker_process(settings: WorkerSettings) -> ForkedProcess | subprocess.Popen[bytes]:
    """Start a worker: forked if this process is single-threaded, else a new interpreter.

    The caller must hold no open database connection (it closes its pool first): a forked
    child would share the sockets or SQLite file handles with it.
    """
    if hasattr(os, "fork") and threading.active_count() == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _forked_child(settings)  # never returns
        return ForkedProcess(pid)
    # The settings (the database URL and its password among them) go through a pipe: argv is
    # world-readable (ps, /proc/PID/cmdline), a pipe only to the two ends.
    child = subprocess.Popen(
        [sys.executable, "-m", "jobqueue.runtime.spawn"], stdin=subprocess.PIPE
    )
    assert child.stdin is not None
    try:
        with child.stdin:
            child.stdin.write(settings.to_json().encode())
    except BrokenPipeError:
        pass  # it died before reading them: reaped and restarted like any crashed worker
    return child


def _forked_child(settings: WorkerSettings) -> None:
    try:
        # Connections the parent opened belong to the parent: forget them, unclosed.
        forget_default_connections()
        # ULIDs are monotonic within a millisecond from state this child shares with its
        # parent; starting in a later millisecond keeps the two from producing the same id.
        time.sleep(0.002)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)  # the worker installs its own
        inherited = signal.set_wakeup_fd(-1)  # the supervisor's, which wakes its loop
        if inherited != -1:
            os.close(inherited)
    except BaseException:
        os._exit(EXIT_STARTUP_FAILED)
    run_worker_process(settings)


def run_worker_process(settings: WorkerSettings, *, fresh: bool = False) -> None:
    """Entry point of a worker process: import the apps, run, and exit hard.

    A forked worker keeps the logging its supervisor settled (the host's, or jobqueue's). A
    fresh interpreter makes the same decision the supervisor did: jobqueue's output until the
    apps are imported, then whatever configuration they made, or else jobqueue's.

    ``os._exit`` because job threads still running a job (released at shutdown) would
    otherwise hold the interpreter open, and a forked child must never return into the
    supervisor's code.
    """
    code = EXIT_STARTUP_FAILED
    try:
        from jobqueue.apps import import_apps
        from jobqueue.log import configure_logging, settle_logging

        if fresh:
            configure_logging(settings.log_level)
        import_apps(settings.apps)
        if fresh:
            settle_logging()
        code = Worker(settings).run()
    except BaseException as error:
        log.error("process_crashed", error=repr(error), exc_info=error)
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    run_worker_process(WorkerSettings.from_json(sys.stdin.read()), fresh=True)
