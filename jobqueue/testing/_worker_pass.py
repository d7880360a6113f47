"""The worker pass a crash history interrupts, and ``jobrunner work --burst`` as recovery.

The pass does what a worker's claim loop does, with the same functions, on one thread: register,
then in one write transaction write the finished outcomes and claim the next batch (one job
running, the rest prefetched, as a worker with one thread and a prefetch holds them), run them,
and when nothing is due hand back any job the database says it holds that it never received (a
claim whose answer was lost, as the heartbeat's reconciliation does), then deregister. One
thread, so its commits come in the same order every run, which is what lets a history die right
after commit k. A transient database error is retried as the claim loop retries it.

It registers under the pid of a stand-in child process, not the test's own: a worker killed for
real leaves its pid gone, and that is how the supervisor's maintenance finds it dead at once
(rather than after the heartbeat threshold). When the simulated worker dies, so does its
stand-in.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from ulid import ULID

from jobqueue.database import Database
from jobqueue.db_errors import is_transient
from jobqueue.registry import registry
from jobqueue.runtime import execution
from jobqueue.runtime.execution import Outcome
from jobqueue.runtime.host import hostname
from jobqueue.runtime.outcomes import Record, log_report, write_records
from jobqueue.store import attempts, claiming, processes
from jobqueue.store.claimed import ClaimedJob
from jobqueue.testing._zygote import forks

T = TypeVar("T")

#: Set to run every recovery in a new interpreter rather than forked from a warm one.
FRESH_INTERPRETER = "JOBQUEUE_DUE_WORK_FRESH_INTERPRETER"
#: How often one step of the pass is tried when the database blips before the pass gives up.
TRIES = 20


class WorkerPass:
    """One pass of a worker over ``queues`` until nothing is due. Callable with any handle, so
    it can be a handoff's transition."""

    def __init__(
        self, database: Database, *, queues: Sequence[str] | None = None, batch: int = 2
    ) -> None:
        self.database = database
        self.queues = list(queues) if queues is not None else None
        self.batch = batch

    def __call__(self, *_handle: object) -> None:
        stand_in = subprocess.Popen(["sleep", "3600"])
        process_id = str(ULID())
        try:
            self._retrying(lambda: self._register(process_id, stand_in.pid))
            self._work(process_id)
            self._retrying(lambda: self._deregister(process_id))
        finally:
            stand_in.kill()  # the worker's process ends, whether it finished or died
            stand_in.wait()

    def _work(self, process_id: str) -> None:
        records: list[Record] = []
        while True:
            claimed = self._retrying(partial(self._write_and_claim, process_id, records))
            records = []
            if not claimed:
                if not self._retrying(lambda: self._hand_back_strays(process_id)):
                    return
                continue
            records = [Record(job, _run(job)) for job in claimed]

    def _write_and_claim(self, process_id: str, records: list[Record]) -> list[ClaimedJob]:
        now = datetime.now(UTC)
        with self.database.transaction() as connection:
            report = write_records(connection, process_id, records, now) if records else None
            claimed = claiming.claim_due(
                connection, process_id=process_id, queues=self.queues, limit=self.batch, now=now
            ).jobs
        if report is not None:
            report.succeeded = []  # as drain(): no line per success in a host's test output
            log_report(report)
        return claimed

    def _hand_back_strays(self, process_id: str) -> bool:
        """Release jobs the database says this process holds (all of them are strays once the
        pass has nothing left to run); True if any was handed back."""
        with self.database.transaction() as connection:
            held = attempts.held_jobs(connection, process_id)
            return bool(held) and bool(
                attempts.release_jobs(connection, process_id=process_id, fences=held)
            )

    def _register(self, process_id: str, pid: int) -> None:
        try:
            with self.database.transaction() as connection:
                processes.register(
                    connection,
                    process_id=process_id,
                    kind="worker",
                    hostname=hostname(),
                    pid=pid,
                    queues=self.queues,
                )
        except IntegrityError:
            # An earlier try committed and only its answer was lost: the row is ours.
            with self.database.transaction(read_only=True) as connection:
                if not processes.is_registered(connection, process_id):
                    raise

    def _deregister(self, process_id: str) -> None:
        with self.database.transaction() as connection:
            processes.deregister(connection, process_id)

    def _retrying(self, step: Callable[[], T]) -> T:
        delay = 0.01
        for tries in range(1, TRIES + 1):
            try:
                return step()
            except DBAPIError as error:
                if not is_transient(error) or tries == TRIES:
                    raise
            time.sleep(delay)  # a backoff, as the claim loop's after a failed cycle
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")


def _run(job: ClaimedJob) -> Outcome:
    definition = registry.find(job.name)
    if definition is not None and definition.is_async:
        outcome = asyncio.run(execution.run_async(job))
    else:
        outcome = execution.run_sync(job)
    execution.run_hooks(job, outcome)
    return outcome


def run_burst(
    database_url: str,
    *,
    apps: Sequence[str],
    cwd: Path,
    paths: Sequence[Path] = (),
    environment: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> None:
    """Recovery as production runs it: ``jobrunner work --burst`` in a process of its own,
    until nothing is due and nothing is running; its maintenance declares dead workers dead
    and rescues their jobs first. Raises with its output if it fails.

    The process is forked from a warm interpreter (:mod:`jobqueue.testing._zygote`) that has
    imported jobqueue once, which saves each run its ~0.6 s of imports; with
    ``JOBQUEUE_DUE_WORK_FRESH_INTERPRETER=1`` (or no ``fork``) it is a new interpreter."""
    env = {
        **os.environ,
        "JOBQUEUE_DATABASE_URL": database_url,
        "JOBQUEUE_HEARTBEAT_INTERVAL": "0.2",
        "JOBQUEUE_DEAD_THRESHOLD": "1.5",
        "JOBQUEUE_POLL_INTERVAL": "0.1",
        "JOBQUEUE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(
            [str(cwd), *map(str, paths), os.environ.get("PYTHONPATH", "")]
        ),
        **(environment or {}),
    }
    arguments = ["work", "--burst", "--processes", "1"]
    for app in apps:
        arguments += ["--app", app]
    if hasattr(os, "fork") and not os.environ.get(FRESH_INTERPRETER):
        code, output = forks.run(
            ["jobrunner", *arguments],
            env=env,
            cwd=str(cwd),
            paths=[str(path) for path in paths],
            timeout=timeout,
        )
    else:
        command = [sys.executable, "-m", "jobqueue", *arguments]
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        code, output = done.returncode, done.stderr
    if code != 0:
        raise AssertionError(f"jobrunner work --burst exited {code}:\n{output}")
