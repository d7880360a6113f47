"""``python -m jobqueue._worker_main SETTINGS_JSON``: how the supervisor starts a worker."""

import sys

from jobqueue.settings import WorkerSettings
from jobqueue.worker import run_worker_process

if __name__ == "__main__":
    run_worker_process(WorkerSettings.from_json(sys.argv[1]))
