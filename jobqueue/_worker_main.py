"""How the supervisor starts a worker: ``python -m jobqueue._worker_main SETTINGS_JSON``."""

from __future__ import annotations

import os
import sys

import structlog

from jobqueue.settings import WorkerSettings
from jobqueue.worker import EXIT_STARTUP_FAILED, Worker

log = structlog.get_logger("jobqueue.worker")


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


if __name__ == "__main__":
    run_worker_process(WorkerSettings.from_json(sys.argv[1]))
