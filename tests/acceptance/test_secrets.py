"""Secrets stay out of other users' sight: a worker started as a fresh interpreter gets its
settings (the database URL, password included) through a pipe, not argv, which any user can read
in ``ps`` or ``/proc/PID/cmdline``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jobqueue import JobQueue

from workers import wait_until

SECRET = "S3cretPW-not-for-ps"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker_pids(jq: JobQueue) -> list[int]:
    with jq.transaction(read_only=True) as connection:
        rows = connection.execute(text("SELECT pid FROM job_processes WHERE kind = 'worker'"))
        return [int(pid) for (pid,) in rows]


# PostgreSQL here trusts local connections, so a URL with a password still connects; the other
# backends would refuse the made-up password.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_no_worker_has_the_password_in_its_command_line(jq: JobQueue, work: Any) -> None:
    url = make_url(jq.database_url).set(password=SECRET).render_as_string(hide_password=False)
    # --metrics-port gives the supervisor a second thread, so workers start as fresh
    # interpreters (a fork would not need argv at all).
    runner = work("--metrics-port", str(_free_port()), "--processes", "2", database_url=url)

    def two_workers() -> bool:
        assert runner.process.poll() is None, runner.output()[-3000:]
        return len(_worker_pids(jq)) == 2

    wait_until(two_workers, 60, "two workers to register")
    for pid in _worker_pids(jq):
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"jobqueue.runtime.spawn" in arguments, arguments  # a fresh interpreter indeed
        assert not any(SECRET.encode() in argument for argument in arguments), arguments


@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
def test_wrong_connection_settings_fail_at_once_in_one_line(jq: JobQueue, work: Any) -> None:
    """A database that is still starting is waited for; a database that does not exist, a
    user that does not exist or a wrong password will not get better, and must not look like
    a hang."""
    base = make_url(jq.database_url)
    wrong = [base.set(database="no_such_database_jq")]
    if jq.dialect == "mysql":
        wrong.append(base.set(password="wrong-" + SECRET))
    else:
        wrong.append(base.set(username="no_such_role_jq"))
    for url in wrong:
        runner = work("--burst", database_url=url.render_as_string(hide_password=False))
        code = runner.wait(30)
        output = runner.output()
        assert code == 1, output[-3000:]
        assert "process_start_waiting" not in output, output[-3000:]
        assert "jobrunner work: error:" in output and "Traceback" not in output, output[-3000:]
        assert SECRET not in output


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_unreachable_database_is_waited_for_only_as_long_as_asked(
    jq: JobQueue, work: Any
) -> None:
    closed = make_url(jq.database_url).set(host="127.0.0.1", port=_free_port())
    runner = work("--burst", "--startup-timeout", "2", database_url=closed.render_as_string(False))
    code = runner.wait(30)
    output = runner.output()
    assert code == 1, output[-3000:]
    assert "process_start_waiting" in output  # it did wait, as for a database starting up
    assert "jobrunner work: error:" in output and "Traceback" not in output
