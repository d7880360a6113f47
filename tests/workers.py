"""Running `jobrunner work` for real in tests: a process-group handle, a ledger table the test
jobs write (one row per attempt), and waiting on conditions with deadlines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from jobqueue import JobQueue

from backends import PGBOUNCER, TestDatabase, direct_url

LEDGER = "test_ledger"
HERE = Path(__file__).parent / "acceptance"  # where ledger_jobs.py lives
if str(HERE) not in sys.path:  # the job modules are imported by tests too
    sys.path.insert(0, str(HERE))
FAST = {
    "JOBQUEUE_HEARTBEAT_INTERVAL": "0.2",
    "JOBQUEUE_DEAD_THRESHOLD": "1.5",
    "JOBQUEUE_POLL_INTERVAL": "0.2",
    "JOBQUEUE_LOG_LEVEL": "INFO",
}


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Work:
    """A `jobrunner work` supervisor in its own process group, output kept in a file."""

    def __init__(self, url: str, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        env = {**os.environ, **FAST, "JOBQUEUE_DATABASE_URL": url, **(env or {})}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobqueue", "work", "--app", "ledger_jobs", *args],
                cwd=HERE,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"jobrunner work did not exit within {timeout} s:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, object]]:
        found = []
        for line in self.output().splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                event = json.loads(line)
                if event.get("event") == name:
                    found.append(event)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def ledger(jq: JobQueue) -> Iterator[Callable[[], list[tuple[str, int, str]]]]:
    with jq.transaction() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {LEDGER}"))
        connection.execute(
            text(
                f"CREATE TABLE {LEDGER} (job_id VARCHAR(26) NOT NULL, attempt INTEGER "
                "NOT NULL, tag VARCHAR(50), pid INTEGER, at VARCHAR(40))"
            )
        )

    def rows() -> list[tuple[str, int, str]]:
        with jq.transaction(read_only=True) as connection:
            result = connection.execute(
                text(f"SELECT job_id, attempt, at FROM {LEDGER} ORDER BY at")
            )
            return [(r[0], int(r[1]), str(r[2])) for r in result]

    yield rows
    with jq.transaction() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {LEDGER}"))


@pytest.fixture
def work(jq: JobQueue, backend: TestDatabase, tmp_path: Path) -> Iterator[Callable[..., Work]]:
    """Start ``jobrunner work`` on the test's database. Through PgBouncer the workers get a
    direct listen URL, as the docs tell users to give them."""
    started: list[Work] = []
    listen = {"JOBQUEUE_LISTEN_URL": direct_url(backend)} if backend.route == PGBOUNCER else {}

    def start(
        *args: str, database_url: str | None = None, env: dict[str, str] | None = None
    ) -> Work:
        url = database_url or jq.database_url
        runner = Work(
            url, tmp_path / f"work{len(started)}.log", *args, env={**listen, **(env or {})}
        )
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


def start_recorded(jq: JobQueue, job_id: str) -> bool:
    """Whether the worker has recorded that the job's current attempt started (it does so
    once the attempt has run a while): only then does a kill count as a failed attempt."""
    row = jq.get_job(job_id)
    return row is not None and row.started_attempt == row.attempts


def status(jq: JobQueue, job_id: str) -> str:
    row = jq.get_job(job_id)
    assert row is not None
    return row.status


def summary(jq: JobQueue) -> str:
    """Status counts and a few errors, for assertion messages."""
    with jq.transaction(read_only=True) as connection:
        counts = connection.execute(
            text("SELECT status, count(*) FROM job_queue GROUP BY status")
        ).all()
        errors = connection.execute(
            text(
                "SELECT status, failed_attempts, last_error FROM job_queue "
                "WHERE status <> 'succeeded' ORDER BY id LIMIT 5"
            )
        ).all()
    return f"statuses: {counts}\nunfinished: {errors}\n"


def kill_connections(jq: JobQueue) -> int:
    """Cut every other connection to the test database, as a failover or a network cut would.

    The pooled connection it takes may itself have been cut by the round before (each round
    kills every connection but its own), which failed a test with AdminShutdown now and then:
    such a connection is invalidated by SQLAlchemy, and the round is tried again on a new one.
    """
    for attempt in (1, 2):
        try:
            return _kill_others(jq)
        except DBAPIError as error:
            if attempt == 2 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def _kill_others(jq: JobQueue) -> int:
    with jq.engine.connect() as connection:
        if jq.dialect == "postgresql":
            result = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            killed = len(result.all())
            connection.commit()
            return killed
        ids = (
            connection.execute(
                text(
                    "SELECT id FROM information_schema.processlist "
                    "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                )
            )
            .scalars()
            .all()
        )
        for connection_id in ids:
            with contextlib.suppress(Exception):  # it may have gone already
                connection.execute(text(f"KILL {int(connection_id)}"))
        return len(ids)
