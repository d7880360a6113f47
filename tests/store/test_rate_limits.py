"""Rate limits and the turn between keys, at the store level on every backend: a claim starts
no more of a key's jobs than its sliding windows allow, costs count, a key out of room has its
jobs moved to when the window frees (and other keys go on), and keys take turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from ulid import ULID

from jobqueue import JobCall, JobQueue, job
from jobqueue.rate_limits import parse_rate
from jobqueue.runtime import lifecycle
from jobqueue.schema import BLOCKED, RUNNING, job_rate_starts
from jobqueue.store import claims


@job(name="rate.call", rate_limit="3/m", rate_key=lambda tenant, *_: f"tenant:{tenant}")
def call(tenant: str, n: int) -> None: ...


@job(name="rate.windows", rate_limits=["2/s", "3/h"])
def windows(n: int) -> None: ...


@job(name="rate.weighted", rate_limit="10/m", rate_cost=lambda units: units)
def weighted(units: int) -> None: ...


@job(name="rate.tenant", concurrency_limit=100, concurrency_key=lambda tenant, _: tenant)
def tenant_job(tenant: str, n: int) -> None: ...


def claim(jq: JobQueue, limit: int = 50, now: datetime | None = None) -> list[str]:
    """What one claim by a freshly registered worker starts (ids, in run order)."""
    process_id = str(ULID())
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id=process_id, kind="worker")
    with jq.transaction() as connection:
        jobs = claims.claim_jobs(
            connection,
            process_id=process_id,
            queues=None,
            limit=limit,
            now=now or datetime.now(UTC),
        )
    assert all(job.status == RUNNING for job in jobs)
    return [job.id for job in jobs]


def test_a_key_starts_no_more_than_its_window_and_other_keys_go_on(jq: JobQueue) -> None:
    acme = [call.enqueue("acme", n).id for n in range(5)]
    globex = [call.enqueue("globex", n).id for n in range(2)]
    record = jq.get_job(acme[0])
    assert record is not None and (record.status, record.rate_key) == (BLOCKED, "tenant:acme")
    assert record.rate_limits == "3/60"
    started = claim(jq)
    assert sorted(started) == sorted(acme[:3] + globex)
    assert claim(jq) == []  # acme's window is full; globex has nothing left
    # acme's two others moved to when its window frees: a minute after its first start.
    later = [jq.get_job(job_id) for job_id in acme[3:]]
    first_start = jq.get_job(acme[0]).started_at  # type: ignore[union-attr]
    assert all(r is not None and r.status == BLOCKED for r in later)
    assert all(r.scheduled_for >= first_start + timedelta(minutes=1) for r in later)  # type: ignore[union-attr]
    assert claim(jq, now=datetime.now(UTC) + timedelta(minutes=1, seconds=1)) == acme[3:]


def test_every_window_counts(jq: JobQueue) -> None:
    ids = [windows.enqueue(n).id for n in range(5)]
    now = datetime.now(UTC)
    assert claim(jq, now=now) == ids[:2]  # two a second
    assert claim(jq, now=now + timedelta(seconds=2)) == ids[2:3]  # three an hour
    assert claim(jq, now=now + timedelta(seconds=4)) == []


def test_costs_count_against_the_window(jq: JobQueue) -> None:
    ids = [weighted.enqueue(units).id for units in (4, 4, 4, 1)]
    started = claim(jq)
    assert started == [ids[0], ids[1], ids[3]]  # 4 + 4 + 1 fit in 10; the third 4 does not
    with jq.transaction(read_only=True) as connection:
        spent = connection.execute(select(func.sum(job_rate_starts.c.cost))).scalar()
    assert spent == 9


def test_keys_take_turns(jq: JobQueue) -> None:
    jq.enqueue_many([tenant_job.call("big", n) for n in range(200)])
    small = [tenant_job.enqueue("small", n).id for n in range(3)]
    first = claim(jq, limit=4)
    assert set(small[:2]) <= set(first)  # each key's first jobs before any key's third
    assert small[2] in first + claim(jq, limit=4)


def test_bad_rate_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="count per period"):
        job(name="rate.bad", rate_limit="often")(lambda: None)
    with pytest.raises(ValueError, match="not both"):
        job(name="rate.both", rate_limit="1/s", rate_limits=["1/s"])(lambda: None)
    with pytest.raises(ValueError, match="need a rate_limit"):
        job(name="rate.keyless", rate_key="k")(lambda: None)
    with pytest.raises(ValueError, match="more than a window allows"):
        job(name="rate.costly", rate_limit="2/s", rate_cost=3)(lambda: None)
    with pytest.raises(ValueError, match="go together"):
        JobCall("rate.by_name", rate_key="k")
    assert parse_rate("50/10s").seconds == 10 and parse_rate("5000/h").count == 5000


def test_a_queue_rate_limit_covers_its_jobs_without_one(jq: JobQueue) -> None:
    limited = JobQueue(jq.database_url, queues={"slow": {"rate_limit": "2/m"}})
    try:
        plain = [JobCall("rate.plain", args=(n,), queue="slow") for n in range(3)]
        ids = [handle.id for handle in limited.enqueue_many(plain)]
        record = limited.get_job(ids[0])
        assert record is not None and (record.rate_key, record.rate_limits) == (
            "queue:slow",
            "2/60",
        )
        own = call.using(jobqueue=limited, queue="slow").enqueue("acme", 1)
        assert limited.get_job(own.id).rate_key == "tenant:acme"  # type: ignore[union-attr]
        assert claim(limited) == [ids[0], own.id, ids[1]]
    finally:
        limited.engine.dispose()


def test_bad_queue_rate_limits_are_refused(tmp_path) -> None:
    from jobqueue.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="queue 'q': a rate limit is a count per period"):
        JobQueue(f"sqlite:///{tmp_path / 'x.db'}", queues={"q": {"rate_limit": "fast"}})


def test_a_process_without_a_row_starts_no_keyed_job(jq: JobQueue) -> None:
    handle = call.enqueue("acme", 1)
    with jq.transaction() as connection:
        taken = claims.claim_jobs(
            connection, process_id="declared-dead", queues=None, limit=5, now=datetime.now(UTC)
        )
    assert taken == []
    assert jq.get_job(handle.id).status == BLOCKED  # type: ignore[union-attr]
    with jq.transaction(read_only=True) as connection:
        assert connection.execute(select(func.count()).select_from(job_rate_starts)).scalar() == 0


@job(name="rate.hourly", rate_limit="3/h", rate_key="shared")
def hourly(n: int) -> None: ...


@job(name="rate.minutely", rate_limit="100/m", rate_key="shared")
def minutely(n: int) -> None: ...


def test_jobs_sharing_a_key_share_every_window_of_it(jq: JobQueue) -> None:
    for n in range(3):
        hourly.enqueue(n)
    now = datetime.now(UTC)
    assert len(claim(jq, now=now)) == 3  # the hour's three
    fast = [minutely.enqueue(n).id for n in range(2)]
    assert claim(jq, now=now + timedelta(minutes=2)) == fast  # their own window has room
    slow = hourly.enqueue(9).id
    # The minutely claims kept the hourly starts: the hour is still full for the key.
    assert claim(jq, now=now + timedelta(minutes=3)) == []
    assert jq.get_job(slow).status == BLOCKED  # type: ignore[union-attr]


def test_long_periods_are_stored_exactly(jq: JobQueue) -> None:
    monthly = job(name="rate.monthly", rate_limit="10000/30d")(lambda: None)
    record = jq.get_job(monthly.enqueue().id)
    assert record is not None and record.rate_limits == "10000/2592000"
    assert parse_rate("1/1234567s").seconds == 1234567


@job(
    name="rate.tenant_in_limited_queue",
    queue="metered",
    concurrency_limit=100,
    concurrency_key=lambda tenant, _: tenant,
)
def metered(tenant: str, n: int) -> None: ...


def test_tenants_take_turns_under_a_queue_rate_limit(jq: JobQueue) -> None:
    limited = JobQueue(jq.database_url, queues={"metered": {"rate_limit": "1000/s"}})
    try:
        limited.enqueue_many([metered.call("big", n) for n in range(50)])
        small = metered.using(jobqueue=limited).enqueue("small", 0).id
        assert small in claim(limited, limit=5)
    finally:
        limited.engine.dispose()
