"""Expiry (``expires_in`` / ``expires_at``): a job not started by its deadline ends ``expired``
and never runs late, whether the claim finds it too late or a failed attempt's retry would
start too late; its end frees what it held and is carried to batches and dependents, like any
other end. On every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import JobExpiredError, JobQueue, batch, job
from jobqueue.cli.main import main
from jobqueue.errors import NaiveDatetimeError
from jobqueue.schema import CANCELLED, EXPIRED, PENDING, SUCCEEDED
from jobqueue.testing import drain

ran: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


@job(name="expiry.work")
def work(label: str) -> None:
    ran.append(label)


@job(name="expiry.soon", expires_in=timedelta(minutes=5))
def soon(label: str) -> None:
    ran.append(label)


@job(name="expiry.flaky", expires_in=timedelta(seconds=30), backoff=3600)
def flaky(label: str) -> None:
    ran.append(label)
    raise RuntimeError("the partner is down")


@job(name="expiry.limited", concurrency_limit=1, concurrency_key="one")
def limited(label: str) -> None:
    ran.append(label)


@job(name="expiry.unique", unique=True)
def unique(label: str) -> None:
    ran.append(label)


def past() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


def status(jq: JobQueue, job_id: str) -> str | None:
    record = jq.get_job(job_id)
    return record.status if record is not None else None


def test_a_job_past_its_deadline_is_expired_not_run(jq: JobQueue) -> None:
    late = work.using(expires_at=past()).enqueue("late")
    fresh = soon.enqueue("fresh")
    counts = drain(jq)
    assert ran == ["fresh"]
    assert counts == {EXPIRED: 1, SUCCEEDED: 1}
    record = jq.get_job(late.id)
    assert record is not None and record.status == EXPIRED
    assert record.finished_at is not None and record.expires_at is not None
    assert status(jq, fresh.id) == SUCCEEDED
    assert jq.admin.stats(minutes=5).expired == 1
    with pytest.raises(JobExpiredError, match=late.id):
        late.result(timeout=5)


def test_expires_in_counts_from_when_the_job_is_due(jq: JobQueue) -> None:
    when = datetime.now(UTC) + timedelta(hours=2)
    handle = soon.enqueue_at(when, "later")
    record = jq.get_job(handle.id)
    assert record is not None and record.expires_at == when + timedelta(minutes=5)
    scheduled = work.using(expires_in=timedelta(seconds=90)).enqueue_at(when, "x")
    record = jq.get_job(scheduled.id)
    assert record is not None and record.expires_at == when + timedelta(seconds=90)


def test_a_retry_that_would_start_too_late_expires(jq: JobQueue) -> None:
    handle = flaky.enqueue("once")
    assert drain(jq) == {EXPIRED: 1}
    assert ran == ["once"]  # it ran once; its retry (an hour later) would be past the deadline
    record = jq.get_job(handle.id)
    assert record is not None and record.status == EXPIRED
    assert record.failed_attempts == 1 and record.error is not None
    assert "partner is down" in record.error.message


def test_a_retry_within_the_deadline_stays_pending(jq: JobQueue) -> None:
    handle = flaky.using(expires_in=timedelta(hours=3)).enqueue("retried")
    assert drain(jq) == {PENDING: 1}
    assert status(jq, handle.id) == PENDING


def test_an_expired_job_frees_its_slot_and_its_unique_key(jq: JobQueue) -> None:
    holder = limited.using(expires_at=past()).enqueue("holder")
    waiter = limited.enqueue("waiter")
    first = unique.using(expires_at=past()).enqueue("u")
    drain(jq)
    assert status(jq, holder.id) == EXPIRED and status(jq, waiter.id) == SUCCEEDED
    assert status(jq, first.id) == EXPIRED
    again = unique.enqueue("u")
    assert again.id != first.id and not again.existing
    drain(jq)
    assert sorted(ran) == ["u", "waiter"]


def test_an_expired_job_ends_in_its_batch_and_cancels_its_dependents(jq: JobQueue) -> None:
    with batch() as group:
        member = work.using(expires_at=past()).enqueue("member")
        work.enqueue("kept")
    dependent = work.using(depends_on=[member]).enqueue("dependent")
    drain(jq)
    assert ran == ["kept"]
    assert status(jq, member.id) == EXPIRED and status(jq, dependent.id) == CANCELLED
    record = group.fetch()
    assert record is not None and record.finished_at is not None
    assert (record.succeeded, record.cancelled) == (1, 1)


def test_expiry_options_are_checked(jq: JobQueue) -> None:
    with pytest.raises(ValueError, match="not both"):
        work.using(expires_in=timedelta(seconds=1), expires_at=past())
    with pytest.raises(NaiveDatetimeError):
        work.using(expires_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="expires_in must be a positive"):
        work.using(expires_in=timedelta(0))
    with pytest.raises(ValueError, match="expires_in must be a positive"):
        job(name="expiry.bad", expires_in=-1)(lambda: None)


def test_jobs_list_shows_expired_jobs(
    jq: JobQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    late = work.using(expires_at=past()).enqueue("late")
    drain(jq)
    monkeypatch.setenv("JOBQUEUE_DATABASE_URL", jq.database_url)
    assert main(["jobs", "list", "--status", "expired"]) == 0
    assert late.id in capsys.readouterr().out


def test_an_operator_can_retry_an_expired_job_without_its_deadline(jq: JobQueue) -> None:
    late = work.using(expires_at=past()).enqueue("late")
    drain(jq)
    assert jq.admin.retry([late.id]) == [late.id]
    record = jq.get_job(late.id)
    assert record is not None and record.status == PENDING and record.expires_at is None
    drain(jq)
    assert ran == ["late"] and status(jq, late.id) == SUCCEEDED


def test_expired_jobs_can_be_pruned(jq: JobQueue) -> None:
    late = work.using(expires_at=past()).enqueue("late")
    drain(jq)
    assert jq.admin.prune(status=EXPIRED, older_than=timedelta(0)) == 1
    assert jq.get_job(late.id) is None
