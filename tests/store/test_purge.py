"""Clearing a queue (``Admin.clear_queue``, ``jobrunner queues clear``): its waiting jobs are
discarded in chunks; running jobs and other queues are left alone; jobs in workflows and
jobs holding concurrency slots are cancelled on the way, so batches still finish, dependents
are cancelled and slots pass on. On every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobqueue import JobQueue, batch, job
from jobqueue import queue_admin as queue_admin_module
from jobqueue.cli.main import main
from jobqueue.runtime import lifecycle
from jobqueue.schema import BLOCKED, CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED
from jobqueue.store import claims
from jobqueue.testing import drain

ran: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


@job(name="purge.work", queue="bulk")
def work(label: str) -> None:
    ran.append(label)


@job(name="purge.other", queue="other")
def other(label: str) -> None:
    ran.append(label)


@job(name="purge.limited", queue="bulk", concurrency_limit=1, concurrency_key="shared")
def limited(label: str) -> None:
    ran.append(label)


@job(name="purge.limited_elsewhere", queue="other", concurrency_limit=1, concurrency_key="shared")
def limited_elsewhere(label: str) -> None:
    ran.append(label)


def status(jq: JobQueue, job_id: str) -> str | None:
    record = jq.get_job(job_id)
    return record.status if record is not None else None


def test_clear_discards_waiting_jobs_and_leaves_the_rest(jq: JobQueue) -> None:
    from datetime import UTC, datetime

    running = work.enqueue("running")
    with jq.transaction() as connection:  # a worker holds it
        lifecycle.register(connection, process_id="p", kind="worker")
        (claimed,) = claims.claim_jobs(
            connection, process_id="p", queues=["bulk"], limit=1, now=datetime.now(UTC)
        )
    assert claimed.id == running.id
    due = [work.enqueue(f"due-{i}") for i in range(3)]
    later = [work.enqueue_in(timedelta(hours=1), f"later-{i}") for i in range(2)]
    elsewhere = other.enqueue("elsewhere")
    assert jq.admin.clearable("bulk") == {"pending": 3, "scheduled": 2, "blocked": 0}
    assert jq.admin.clear_queue("bulk", statuses=["scheduled"]) == 2
    assert [status(jq, h.id) for h in later] == [None, None]
    assert all(status(jq, h.id) == PENDING for h in due)
    assert jq.admin.clear_queue("bulk") == 3
    assert status(jq, running.id) == RUNNING and status(jq, elsewhere.id) == PENDING
    drain(jq)
    assert ran == ["elsewhere"]
    with pytest.raises(ValueError, match="cannot clear running"):
        jq.admin.clear_queue("bulk", statuses=["running"])


def test_clear_goes_a_chunk_at_a_time(jq: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_admin_module, "CLEAR_CHUNK", 40)
    jq.enqueue_many([work.call(str(i)) for i in range(130)])
    assert jq.admin.clear_queue("bulk") == 130
    assert jq.count_jobs() == 0


def test_clear_carries_through_batches_dependents_and_slots(jq: JobQueue) -> None:
    with batch(on_complete=other.call("batch callback")) as b:
        work.enqueue("member")
    outside = other.using(depends_on=[work.enqueue("depended on")]).enqueue("dependent")
    holder = limited.enqueue("holder")  # waits for the "shared" key, holding no slot
    waiting_elsewhere = limited_elsewhere.enqueue("blocked elsewhere")
    assert status(jq, holder.id) == BLOCKED and status(jq, waiting_elsewhere.id) == BLOCKED
    assert jq.admin.clear_queue("bulk") == 3
    assert status(jq, outside.id) == CANCELLED and status(jq, holder.id) is None
    assert status(jq, waiting_elsewhere.id) == BLOCKED  # its key is free: the next claim
    record = b.fetch()
    assert record is not None and record.cancelled == 1
    drain(jq)
    assert sorted(ran) == ["batch callback", "blocked elsewhere"]
    record = b.fetch()
    assert record is not None and record.status == FAILED  # a member did not succeed
    assert status(jq, waiting_elsewhere.id) == SUCCEEDED


def test_the_clear_command(jq: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--database-url", jq.database_url]
    jq.enqueue_many([work.call(str(i)) for i in range(5)])
    work.enqueue_in(timedelta(hours=1), "later")
    assert main(["queues", "clear", "bulk", *url]) == 1  # not a terminal, no --yes
    assert "--yes" in capsys.readouterr().err
    assert jq.count_jobs() == 6
    assert main(["queues", "clear", "bulk", "--status", "pending", "--yes", *url]) == 0
    assert capsys.readouterr().out == "cleared 5 job(s) from queue 'bulk'\n"
    assert main(["queues", "clear", "bulk", "--status", "done", "--yes", *url]) == 1
    assert "cannot clear done" in capsys.readouterr().err
    assert jq.count_jobs() == 1
