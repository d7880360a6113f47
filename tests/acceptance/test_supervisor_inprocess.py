"""A supervisor run inside a process (an embedding app, a test) leaves that process as it was."""

from __future__ import annotations

import signal
from pathlib import Path

from jobqueue import JobQueue, migrations
from jobqueue.runtime.supervisor import Supervisor, SupervisorSettings
from jobqueue.settings import WorkerSettings


def test_an_in_process_supervisor_puts_back_signal_handlers_and_wakeup_fd(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with JobQueue(url) as jq:
        migrations.upgrade(jq.engine)
    watched = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
    before = {signum: signal.getsignal(signum) for signum in watched}
    settings = SupervisorSettings(
        groups=[(WorkerSettings(database_url=url, threads=1, burst=True), 1)],
        database_url=url,
        heartbeat_interval=0.2,
        dead_threshold=5.0,
        shutdown_timeout=1.0,
        burst=True,
    )
    supervisor = Supervisor(settings)
    assert supervisor.run() == 0  # its worker found nothing due, exited, and was reaped
    assert all(child.done for child in supervisor.children)
    assert {signum: signal.getsignal(signum) for signum in watched} == before
    leftover = signal.set_wakeup_fd(-1)
    assert leftover == -1, "the supervisor's wakeup pipe is still installed"
