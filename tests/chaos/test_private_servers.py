"""A database server restarted (cleanly, or by a crash) or stopped for 10 s while jobs are being
enqueued and run: a private PostgreSQL cluster and a private MariaDB server of the test's own, so
the shared servers are never touched.

Workers must ride it out (none restarted, none declared dead); each enqueue either returns, and
its job then runs to success, or raises DatabaseUnavailableError, and then wrote nothing unless
its message says the outcome is unknown; every job runs at least once, and exactly once where no
attempt of it failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from jobqueue import JobQueue

import ledger_jobs
from backends import required_backends, scale_factor
from outage_load import (
    EnqueueLoad,
    assert_enqueues_kept_their_word,
    assert_every_job_ran,
    assert_workers_stayed_up,
    create_ledger,
    ledger_rows,
    wait_for_workers,
)
from private_servers import PrivateServer, ServerUnavailable, start_private_server
from workers import Work, wait_until

pytestmark = pytest.mark.chaos

OUTAGE_SECONDS = 10.0


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def server(request: pytest.FixtureRequest) -> Iterator[PrivateServer]:
    """A private server of one backend for this module's tests, always stopped at the end."""
    backend: str = request.param
    try:
        private = start_private_server(backend)
    except ServerUnavailable as error:
        reason = f"no private {backend} server can run here: {error}"
        if backend in required_backends():
            pytest.fail(f"{reason} (required by JOBQUEUE_REQUIRE_BACKENDS)", pytrace=False)
        pytest.skip(reason)
    try:
        yield private
    finally:
        private.close()


def restart_clean(server: PrivateServer) -> None:
    server.restart(crash=False)


def restart_after_crash(server: PrivateServer) -> None:
    server.restart(crash=True)


def stop_for_ten_seconds(server: PrivateServer) -> None:
    server.stop()
    time.sleep(OUTAGE_SECONDS)  # the outage itself
    server.start()


FAULTS: dict[str, Callable[[PrivateServer], None]] = {
    "restart-clean": restart_clean,  # pg_ctl restart -m fast; SIGTERM to mariadbd
    "restart-after-crash": restart_after_crash,  # pg_ctl restart -m immediate; SIGKILL
    "stopped-10s": stop_for_ten_seconds,
}


def listeners(jq: JobQueue) -> int:
    """PostgreSQL: the connections of this database that are LISTENing for enqueues."""
    with jq.transaction(read_only=True) as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE 'LISTEN %'"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("fault", list(FAULTS))
def test_workers_and_enqueues_ride_out_a_server_restart_or_stop(
    server: PrivateServer, fault: str, tmp_path: Path
) -> None:
    url = server.create_database()
    with JobQueue(url) as jq:
        create_ledger(jq)
        count = max(200, int(600 * scale_factor()))
        jq.enqueue_many([ledger_jobs.sleep.call(0.01) for _ in range(count)])
        runner = Work(url, tmp_path / "work.log", "--processes", "2", "--threads", "4")
        try:
            wait_for_workers(runner, 2, lambda: len(ledger_rows(jq)))
            with EnqueueLoad(jq, "during") as load:
                wait_until(lambda: len(load.accepted) >= 20, 30, "enqueues before the fault")
                FAULTS[fault](server)
                back = len(load.accepted)
                wait_until(
                    lambda: len(load.accepted) >= back + 20, 60, "enqueues to be accepted again"
                )
            if fault == "stopped-10s":
                assert load.refused, "no enqueue met the outage"
                assert runner.events("claim_failed") and runner.events("heartbeat_failed")
            assert_enqueues_kept_their_word(jq, load)
            assert_every_job_ran(jq)
            assert jq.count_jobs() >= count + len(load.accepted)
            if server.backend == "postgresql":
                wait_until(lambda: listeners(jq) == 2, 30, "both workers to LISTEN again")
            assert_workers_stayed_up(runner, workers=2)
        finally:
            runner.stop()
