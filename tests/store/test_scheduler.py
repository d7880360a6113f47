"""The scheduler against each backend: exactly once per occurrence, one catch-up, no backfill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobqueue import JobQueue
from jobqueue.recurring import RecurringTask
from jobqueue.runtime.scheduler import Scheduler

T0 = datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_first_start_records_a_baseline_then_fires_each_occurrence_once(jq: JobQueue) -> None:
    task = RecurringTask("report", "*/5 * * * *", "app.report", args=(1,), queue="reports")
    scheduler = Scheduler(jq, [task])
    assert scheduler.tick(minutes(1)) == []  # first-ever start: no run for 12:00
    assert scheduler.tick(minutes(4)) == []
    (job_id,) = scheduler.tick(minutes(5.5))
    assert scheduler.tick(minutes(6)) == []
    row = jq.get_job(job_id)
    assert row is not None
    assert (row.name, row.queue, row.args, row.scheduled_for) == (
        "app.report",
        "reports",
        [1],
        minutes(5),
    )


def test_downtime_gives_one_catch_up_not_a_backfill(jq: JobQueue) -> None:
    task = RecurringTask("report", "*/5 * * * *", "app.report")
    Scheduler(jq, [task]).tick(minutes(1))  # baseline, then the process stops
    restarted = Scheduler(jq, [task])
    (job_id,) = restarted.tick(minutes(62))  # 12 occurrences missed
    assert jq.get_job(job_id).scheduled_for == minutes(60)  # type: ignore[union-attr]
    assert jq.count_jobs() == 1


def test_several_schedulers_fire_each_occurrence_exactly_once(jq: JobQueue) -> None:
    task = RecurringTask("tick", "* * * * * *", "app.tick")
    schedulers = [Scheduler(jq, [task]) for _ in range(3)]
    for scheduler in schedulers:
        scheduler.tick(T0)
    fired = []
    for second in range(1, 11):
        for scheduler in schedulers:
            fired += scheduler.tick(T0 + timedelta(seconds=second, milliseconds=200))
    assert len(fired) == 10
    times = sorted(jq.get_job(job_id).scheduled_for for job_id in fired)  # type: ignore[union-attr]
    assert times == [T0 + timedelta(seconds=s) for s in range(1, 11)]


def test_next_runs(jq: JobQueue) -> None:
    scheduler = Scheduler(jq, [RecurringTask("r", "0 * * * *", "x")])
    assert scheduler.next_runs(minutes(1)) == {"r": minutes(60)}


def recorded(jq: JobQueue) -> dict[str, list[datetime]]:
    from sqlalchemy import select

    from jobqueue.schema import job_recurring_runs

    with jq.transaction(read_only=True) as connection:
        rows = connection.execute(
            select(job_recurring_runs.c.task, job_recurring_runs.c.fire_at).order_by(
                job_recurring_runs.c.task, job_recurring_runs.c.fire_at
            )
        ).all()
    result: dict[str, list[datetime]] = {}
    for task, fire_at in rows:
        result.setdefault(task, []).append(fire_at)
    return result


def test_pruning_keeps_each_tasks_latest_occurrence_and_the_last_day(jq: JobQueue) -> None:
    hourly = RecurringTask("hourly", "0 * * * *", "app.hourly")
    monthly = RecurringTask("monthly", "0 0 1 * *", "app.monthly")
    scheduler = Scheduler(jq, [hourly, monthly])
    for hour in range(0, 49):  # two days of hourly runs; the month began before T0
        scheduler.tick(T0 + timedelta(hours=hour, minutes=1))
    now = T0 + timedelta(hours=48, minutes=2)
    before = recorded(jq)
    assert len(before["hourly"]) == 49 and len(before["monthly"]) == 1
    deleted = scheduler.prune_runs(keep=timedelta(days=1), now=now)
    after = recorded(jq)
    assert after["hourly"] == [t for t in before["hourly"] if t >= now - timedelta(days=1)]
    assert len(after["hourly"]) == 24
    assert after["monthly"] == before["monthly"]  # older than a day, but its latest
    assert deleted == 49 - 24
    # The latest occurrences still refuse a second firing, even from a fresh scheduler.
    assert Scheduler(jq, [hourly, monthly]).tick(now) == []
