"""Debounce: enqueues with the same key collapse into one job that has not started; it takes
the latest call's arguments and starts after the quiet. Once it runs, the next call is a new
job behind it. On every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import JobQueue, batch, job
from jobqueue.runtime import lifecycle
from jobqueue.schema import PENDING, RUNNING, SUCCEEDED
from jobqueue.store import claims
from jobqueue.testing import drain

ran: list[tuple[str, str]] = []


@job(name="debounce.sync", debounce=timedelta(seconds=30), unique_key=lambda tenant, _: tenant)
def sync(tenant: str, version: int) -> None:
    ran.append((tenant, str(version)))


@job(name="debounce.plain", debounce=0.05)
def plain(version: int) -> None:
    ran.append(("plain", str(version)))


@job(name="debounce.keyed", unique_key=lambda order_id: f"order:{order_id}")
def keyed(order_id: int) -> None:
    ran.append(("keyed", str(order_id)))


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def test_calls_collapse_into_one_job_with_the_latest_arguments(jq: JobQueue) -> None:
    handles = [sync.enqueue("acme", version) for version in range(5)]
    last_call = datetime.now(UTC)
    other = sync.enqueue("globex", 1)
    assert len({h.id for h in handles}) == 1
    assert [h.existing for h in handles] == [False, True, True, True, True]
    assert other.id != handles[0].id
    record = jq.get_job(handles[0].id)
    assert record is not None and record.args == ["acme", 4] and record.status == PENDING
    # It starts after the quiet that followed the last call.
    assert last_call + timedelta(seconds=29) < record.scheduled_for
    assert record.scheduled_for <= last_call + timedelta(seconds=30)
    assert jq.count_jobs(status=PENDING) == 2


def test_a_call_after_the_job_started_is_a_new_job(jq: JobQueue) -> None:
    first = sync.enqueue("acme", 1)
    with jq.transaction() as connection:  # a worker starts it (the quiet has passed)
        lifecycle.register(connection, process_id="p", kind="worker")
        (claimed,) = claims.claim_jobs(
            connection,
            process_id="p",
            queues=None,
            limit=1,
            now=datetime.now(UTC) + timedelta(minutes=1),
        )
    assert claimed.id == first.id
    second = sync.enqueue("acme", 2)
    third = sync.enqueue("acme", 3)
    assert second.id != first.id and third.id == second.id
    first_row, second_row = jq.get_job(first.id), jq.get_job(second.id)
    assert first_row is not None and first_row.status == RUNNING
    assert second_row is not None and second_row.args == ["acme", 3]


def test_without_a_unique_key_the_name_is_the_key(jq: JobQueue) -> None:
    handles = [plain.enqueue(version) for version in range(3)]
    assert len({h.id for h in handles}) == 1
    record = jq.get_job(handles[0].id)
    assert record is not None
    when = record.scheduled_for
    while datetime.now(UTC) <= when:  # a 50 ms quiet; drain runs what is due
        pass
    drain(jq)
    assert ran == [("plain", "2")]
    assert jq.get_job(handles[0].id).status == SUCCEEDED  # type: ignore[union-attr]


def test_a_unique_key_function_without_debounce(jq: JobQueue) -> None:
    first, again, other = keyed.enqueue(7), keyed.enqueue(7), keyed.enqueue(8)
    assert again.id == first.id and again.existing and other.id != first.id
    drain(jq)
    assert sorted(ran) == [("keyed", "7"), ("keyed", "8")]


def test_bad_debounce_is_refused(jq: JobQueue) -> None:
    with pytest.raises(ValueError, match="debounce must be a positive"):
        job(name="debounce.bad", debounce=0)(lambda: None)
    with pytest.raises(ValueError, match="unique_key must be a non-empty string or a function"):
        job(name="debounce.bad_key", unique_key=3)(lambda: None)  # type: ignore[arg-type]
    earlier = sync.enqueue("acme", 0)
    with pytest.raises(ValueError, match="cannot have depends_on"):
        sync.using(depends_on=[earlier]).enqueue("acme", 1)
    with pytest.raises(ValueError, match="cannot join a batch"), batch():
        sync.enqueue("acme", 2)
