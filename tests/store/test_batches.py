"""Batches: written with their jobs when the block ends, counted in each member's outcome
transaction, callbacks enqueued exactly once by the transaction that ends the last member,
nested batches finished after their own callbacks. On every backend, through the worker's own
outcome path (``drain``); the crash and concurrency cases are tests/acceptance/test_workflows.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from jobqueue import (
    BatchFinishedError,
    ConfigurationError,
    FailJob,
    JobQueue,
    batch,
    current_batch,
    job,
)
from jobqueue.schema import CANCELLED, FAILED, PENDING, SUCCEEDED
from jobqueue.testing import drain, inline

ran: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


@job(name="batches.work")
def work(label: str) -> str:
    ran.append(label)
    return label


@job(name="batches.fails", max_attempts=1)
def fails(label: str) -> None:
    ran.append(label)
    raise FailJob(f"{label} failed")


@job(name="batches.callback")
def callback(kind: str) -> None:
    found = current_batch()
    assert found is not None
    record = found.fetch()
    assert record is not None
    ran.append(f"{kind}:{record.succeeded}/{record.failed}/{record.cancelled}")


@job(name="batches.fan_out")
def fan_out(children: int) -> None:
    ran.append("fan_out")
    found = current_batch()
    assert found is not None
    found.add(*[work.call(f"child-{i}") for i in range(children)])


@job(name="batches.nest")
def nest() -> None:
    ran.append("nest")
    with batch(on_complete=callback.call("grandchild")):
        work.enqueue("in-grandchild")


def callbacks(kind: str = "") -> dict[str, Any]:
    return {
        "on_complete": callback.call(f"{kind}complete"),
        "on_success": callback.call(f"{kind}success"),
        "on_failure": callback.call(f"{kind}failure"),
    }


def test_a_batch_that_succeeds_runs_on_complete_and_on_success_once(jq: JobQueue) -> None:
    with batch(**callbacks(), description="import 42") as b:
        for i in range(5):
            work.enqueue(f"row-{i}")
        assert b.fetch() is None  # written when the block ends
    record = b.fetch()
    assert record is not None
    assert (record.status, record.total, record.unfinished, record.description) == (
        "running",
        5,
        5,
        "import 42",
    )
    assert record.jobs == {PENDING: 5}
    drain(jq)
    assert sorted(ran[5:]) == ["complete:5/0/0", "success:5/0/0"]
    record = b.fetch()
    assert record is not None and record.status == SUCCEEDED
    assert (record.succeeded, record.failed, record.callbacks_unfinished) == (5, 0, 0)
    assert record.created_at <= record.members_done_at <= record.finished_at  # type: ignore[operator]
    assert len(record.callback_ids) == 2


def test_a_batch_with_a_failure_runs_on_complete_and_on_failure(jq: JobQueue) -> None:
    with batch(**callbacks()) as b:
        work.enqueue("ok")
        fails.enqueue("bad")
    drain(jq)
    assert sorted(ran[2:]) == ["complete:1/1/0", "failure:1/1/0"]
    record = b.fetch()
    assert (
        record is not None
        and record.status == FAILED
        and record.jobs
        == {
            SUCCEEDED: 1,
            FAILED: 1,
        }
    )


def test_jobs_added_while_the_batch_runs_are_waited_for(jq: JobQueue) -> None:
    with batch(on_complete=callback.call("complete")) as b:
        fan_out.enqueue(3)
    drain(jq)
    assert ran[0] == "fan_out" and sorted(ran[1:4]) == ["child-0", "child-1", "child-2"]
    assert ran[4:] == ["complete:4/0/0"]
    record = b.fetch()
    assert record is not None and record.total == 4
    with pytest.raises(BatchFinishedError, match="has finished"):
        b.add(work.call("too late"))


def test_nested_batches_finish_after_their_own_callbacks(jq: JobQueue) -> None:
    with batch(on_complete=callback.call("parent")) as parent:
        work.enqueue("in-parent")
        with batch(on_complete=callback.call("child")) as child:
            work.enqueue("in-child")
        nest.enqueue()  # opens a grandchild batch from inside a job of the parent
    drain(jq)
    assert ran.index("child:1/0/0") < ran.index("parent:4/0/0")
    assert ran.index("grandchild:1/0/0") < ran.index("parent:4/0/0")
    child_record = child.fetch()
    assert child_record is not None and child_record.parent_id == parent.id
    parent_record = parent.fetch()
    assert parent_record is not None and parent_record.total == 4  # 2 jobs, 2 batches


def test_an_empty_batch_and_one_whose_block_raised(jq: JobQueue) -> None:
    with batch(**callbacks()) as empty:
        pass
    drain(jq)
    assert sorted(ran) == ["complete:0/0/0", "success:0/0/0"]
    record = empty.fetch()
    assert record is not None and record.status == SUCCEEDED
    with pytest.raises(RuntimeError), batch(**callbacks()) as broken:
        work.enqueue("never written")
        raise RuntimeError("the block failed")
    assert broken.fetch() is None and jq.count_jobs(status=PENDING) == 0


def test_a_batch_written_in_the_callers_transaction_rolls_back_with_it(jq: JobQueue) -> None:
    with jq.engine.connect() as connection:
        transaction = connection.begin()
        with batch(connection=connection) as rolled_back:
            work.enqueue("x")
        transaction.rollback()
    assert rolled_back.fetch() is None and jq.count_jobs() == 0
    with (
        jq.engine.connect() as connection,
        connection.begin(),
        batch(connection=connection) as kept,
    ):
        work.enqueue("y")
    assert kept.fetch() is not None and jq.count_jobs() == 1


def test_cancelling_a_batch_cancels_what_has_not_run_and_still_calls_back(jq: JobQueue) -> None:
    with batch(**callbacks()) as b:
        work.enqueue("a")
        with batch(on_complete=callback.call("inner")) as inner:
            work.enqueue("b")
        first = work.enqueue("c")
        work.using(depends_on=[first]).enqueue("d")
    outside = work.using(depends_on=[first]).enqueue("outside")  # not a member, still cancelled
    report = b.cancel()
    assert report is not None and len(report.cancelled) == 4 and report.stopping == set()
    assert set(report.batches) == {b.id, inner.id}
    drain(jq)
    assert sorted(ran) == ["complete:0/0/4", "failure:0/0/4", "inner:0/0/1"]
    for handle in (first, outside):
        record = jq.get_job(handle.id)
        assert record is not None and record.status == CANCELLED
    record = b.fetch()
    assert record is not None and record.status == CANCELLED
    assert b.cancel() is not None  # cancelling again changes nothing
    drain(jq)
    assert len(ran) == 3


def test_an_operators_retry_reopens_a_running_batch_and_frees_a_finished_ones_job(
    jq: JobQueue,
) -> None:
    with batch(on_complete=callback.call("complete")) as b:
        failed = fails.enqueue("bad")
        waiting = work.enqueue_in(timedelta(hours=1), "later")
    drain(jq)
    record = b.fetch()
    assert record is not None and (record.unfinished, record.failed) == (1, 1)
    jq.admin.retry([failed.id])
    record = b.fetch()
    assert record is not None and (record.unfinished, record.failed) == (2, 0)
    drain(jq)  # fails again
    jq.admin.cancel([waiting.id])  # the last member ends: the callback runs
    drain(jq)
    assert ran[-1] == "complete:0/1/1"
    jq.admin.retry([failed.id])  # after the batch finished: the job runs on its own
    drain(jq)
    retried = jq.get_job(failed.id)
    assert retried is not None and retried.batch_id is None
    assert ran.count("complete:0/1/1") == 1


def test_bad_batches_are_refused(jq: JobQueue) -> None:
    with pytest.raises(TypeError, match="job call"), batch(on_complete="report"):  # type: ignore[arg-type]
        pass
    with pytest.raises(ValueError, match="description"), batch(description="x" * 300):
        pass
    with (
        pytest.raises(ValueError, match="callback runs when"),
        batch(on_success=work.using(depends_on=[work.enqueue("a")]).call("b")),
    ):
        pass
    with inline(), pytest.raises(ConfigurationError, match="drain"), batch():
        pass
    with jq.transaction(read_only=True) as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM job_batches")).scalar() == 0


def test_finished_batches_are_pruned_with_their_jobs(jq: JobQueue) -> None:
    with batch(on_complete=callback.call("done")) as finished:
        fails.enqueue("a")
        work.enqueue("b")
    with batch() as running:
        work.enqueue_in(timedelta(hours=1), "later")
    drain(jq)
    assert jq.count_jobs() == 4  # a, b, the callback, later
    deleted = jq.admin.batches.prune(older_than=timedelta(0))
    assert deleted == 4  # two members, one callback, the batch row
    assert finished.fetch() is None and running.fetch() is not None
    assert jq.count_jobs() == 1


def test_the_batches_commands(jq: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    from jobqueue.cli.main import main

    url = ["--database-url", jq.database_url]
    with batch(on_failure=callback.call("failure"), description="nightly import") as done:
        fails.enqueue("bad")
        work.enqueue("good")
    drain(jq)
    with batch(description="waiting") as waiting:
        work.enqueue_in(timedelta(hours=1), "later")
    capsys.readouterr()

    assert main(["batches", "list", *url]) == 0
    listed = capsys.readouterr().out
    assert "nightly import" in listed and "2/2" in listed and "0/1" in listed

    assert main(["batches", "list", "--unfinished", "--json", *url]) == 0
    assert [b["id"] for b in json.loads(capsys.readouterr().out)] == [waiting.id]

    assert main(["batches", "show", done.id, "--json", *url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["succeeded"], shown["failed"]) == (FAILED, 1, 1)
    assert [f["name"] for f in shown["failed_jobs"]] == ["batches.fails"]

    assert main(["batches", "cancel", waiting.id, *url]) == 0
    assert "1 job(s) cancelled" in capsys.readouterr().out
    record = waiting.fetch()
    assert record is not None and record.status == CANCELLED

    assert main(["batches", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", *url]) == 1
    assert "no batch 01ARZ3NDEKTSV4RRFFQ69G5FAV" in capsys.readouterr().err


def test_jobs_added_to_a_cancelled_batch_are_cancelled_at_once(jq: JobQueue) -> None:
    from datetime import UTC, datetime

    from jobqueue.runtime import lifecycle
    from jobqueue.store import claims

    with batch(on_complete=callback.call("complete")) as b:
        running = work.enqueue("running")
    with jq.transaction() as connection:  # a worker holds it: the batch stays open
        lifecycle.register(connection, process_id="p", kind="worker")
        claims.claim_jobs(connection, process_id="p", queues=None, limit=1, now=datetime.now(UTC))
    report = b.cancel()
    assert report is not None and report.stopping == {running.id}
    (added,) = b.add(work.call("added after the cancel"))
    record = jq.get_job(added.id)
    assert record is not None and record.status == CANCELLED
    counts = b.fetch()
    assert counts is not None and (counts.total, counts.unfinished, counts.cancelled) == (2, 1, 1)
