from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import ConfigurationError, job
from jobqueue.recurring import RecurringTask, tasks_from_registry, tasks_from_settings


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_latest_occurrence_counts_now_itself_and_supports_seconds() -> None:
    task = RecurringTask("t", "*/5 * * * *", "j")
    assert task.latest_occurrence(at(2027, 1, 1, 12, 7, 30)) == at(2027, 1, 1, 12, 5)
    assert task.latest_occurrence(at(2027, 1, 1, 12, 10)) == at(2027, 1, 1, 12, 10)
    every_ten_seconds = RecurringTask("s", "* * * * * */10", "j")
    assert every_ten_seconds.latest_occurrence(at(2027, 1, 1, 0, 0, 25)) == at(2027, 1, 1, 0, 0, 20)


def test_time_zones_place_wall_times_on_utc() -> None:
    task = RecurringTask("t", "0 9 * * *", "j", timezone="America/New_York")
    assert task.latest_occurrence(at(2027, 1, 15, 16)) == at(2027, 1, 15, 14)  # 09:00 EST


def test_a_wall_time_in_the_spring_gap_is_skipped() -> None:
    # Berlin, 2027-03-28: clocks jump from 02:00 to 03:00, so 02:30 never happens.
    task = RecurringTask("t", "30 2 * * *", "j", timezone="Europe/Berlin")
    latest = task.latest_occurrence(at(2027, 3, 28, 12))
    assert latest == at(2027, 3, 27, 1, 30)  # the day before; nothing on the 28th
    assert task.latest_occurrence(at(2027, 3, 29, 12)) == at(2027, 3, 29, 0, 30)


def test_a_repeated_wall_time_fires_once() -> None:
    # Berlin, 2027-10-31: 02:00-03:00 happens twice (first at UTC+2, then at UTC+1).
    task = RecurringTask("t", "30 2 * * *", "j", timezone="Europe/Berlin")
    first = task.latest_occurrence(at(2027, 10, 31, 0, 45))  # 02:45 local, first pass
    second = task.latest_occurrence(at(2027, 10, 31, 1, 45))  # 02:45 local, second pass
    assert first == second == at(2027, 10, 31, 0, 30)


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a cron expression"):
        RecurringTask("t", "every minute", "j")
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        RecurringTask("t", "* * * * *", "j", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="cron"):
        job(name="bad.cron", cron="61 * * * *")(lambda: None)


def test_tasks_from_jobs_and_settings() -> None:
    @job(name="sched.nightly", cron="0 3 * * *", timezone="Europe/Paris")
    def nightly() -> None: ...

    (task,) = [t for t in tasks_from_registry() if t.key == "sched.nightly"]
    assert (task.cron, task.timezone, task.job_name) == (
        "0 3 * * *",
        "Europe/Paris",
        "sched.nightly",
    )
    (configured,) = tasks_from_settings(
        {"recurring": {"cleanup": {"job": "app.cleanup", "cron": "*/10 * * * *", "args": [7]}}}
    )
    assert (configured.key, configured.job_name, list(configured.args)) == (
        "cleanup",
        "app.cleanup",
        [7],
    )
    with pytest.raises(ConfigurationError, match="needs at least"):
        tasks_from_settings({"recurring": {"x": {"cron": "* * * * *"}}})
    with pytest.raises(ConfigurationError, match="unknown setting"):
        tasks_from_settings({"recurring": {"x": {"job": "a", "cron": "* * * * *", "cronn": 1}}})
    assert timedelta(0) == timedelta(0)


def test_the_sixth_field_is_the_second_as_the_readme_shows() -> None:
    task = RecurringTask(key="poll", cron="*/5 * * * * 30", job_name="poll")
    start = datetime(2026, 12, 1, 1, 2, tzinfo=UTC)
    assert task.next_occurrence(start) == datetime(2026, 12, 1, 1, 5, 30, tzinfo=UTC)
    assert task.latest_occurrence(start) == datetime(2026, 12, 1, 1, 0, 30, tzinfo=UTC)
