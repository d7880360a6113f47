"""Recurring tasks: what is scheduled, and when each occurrence falls.

A task is a cron expression (five fields, or six with seconds last), a time zone, and the job
to enqueue with its arguments. Tasks come from ``@job(cron=..., timezone=...)`` and from
``[tool.jobqueue.recurring.<task>]`` in pyproject.toml; the supervisor's
:class:`~jobqueue.runtime.scheduler.Scheduler` enqueues them. Occurrences are computed in local
wall-clock time and then placed on the UTC time line: a wall time that does not exist (the
spring-forward gap) is skipped, and a repeated one (the fall-back hour) fires once, at its
first instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jobqueue.calls import JobCall
from jobqueue.errors import ConfigurationError
from jobqueue.options import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_QUEUE
from jobqueue.registry import Registry, registry

_MAX_GAP_STEPS = 1000  # occurrences skipped looking past a DST gap, at most


@dataclass(frozen=True)
class RecurringTask:
    key: str
    cron: str
    job_name: str
    timezone: str = "UTC"
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ConfigurationError(
                f"recurring task {self.key!r}: {self.cron!r} is not a cron expression "
                "(five fields, or six with seconds last)"
            )
        zone(self.timezone, self.key)

    def latest_occurrence(self, now: datetime) -> datetime | None:
        """The most recent fire time at or before ``now``, in UTC."""
        tz = zone(self.timezone, self.key)
        local = now.astimezone(tz).replace(tzinfo=None)
        # croniter steps through naive wall-clock times; +1 µs so "now" itself counts.
        times = croniter(self.cron, local + timedelta(microseconds=1))
        for _ in range(_MAX_GAP_STEPS):
            wall: datetime = times.get_prev(datetime)
            instant = to_utc(wall, tz)
            if instant is not None:
                return instant
        return None

    def next_occurrence(self, now: datetime) -> datetime | None:
        """The first fire time after ``now``, in UTC."""
        tz = zone(self.timezone, self.key)
        times = croniter(self.cron, now.astimezone(tz).replace(tzinfo=None))
        for _ in range(_MAX_GAP_STEPS):
            instant = to_utc(times.get_next(datetime), tz)
            if instant is not None and instant > now:
                return instant
        return None

    def call(self, registry_: Registry, fire_at: datetime) -> JobCall:
        definition = registry_.find(self.job_name)
        options = definition.options if definition is not None else None
        return JobCall(
            self.job_name,
            args=tuple(self.args),
            kwargs=dict(self.kwargs),
            queue=self.queue or (options.queue if options else DEFAULT_QUEUE),
            priority=self.priority
            if self.priority is not None
            else (options.priority if options else DEFAULT_PRIORITY),
            max_attempts=options.max_attempts if options else DEFAULT_MAX_ATTEMPTS,
            scheduled_for=fire_at,
        )


def zone(name: str, task: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"recurring task {task!r}: unknown time zone {name!r}") from None


def to_utc(wall: datetime, tz: tzinfo) -> datetime | None:
    """The UTC instant of a local wall time: None in a DST gap, the first instance if repeated."""
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return None  # the clocks jumped over this wall time
    return instant


def tasks_from_registry(registry_: Registry = registry) -> list[RecurringTask]:
    tasks = []
    for name in registry_.names():
        definition = registry_.get(name)
        if definition.options.cron:
            tasks.append(
                RecurringTask(
                    key=name,
                    cron=definition.options.cron,
                    job_name=name,
                    timezone=definition.options.timezone or "UTC",
                )
            )
    return tasks


def tasks_from_settings(settings: Mapping[str, Any]) -> list[RecurringTask]:
    """``[tool.jobqueue.recurring.<key>]`` tables: job, cron, timezone, args, kwargs, queue,
    priority."""
    section = settings.get("recurring", {})
    if not isinstance(section, dict):
        raise ConfigurationError("[tool.jobqueue.recurring] must be a table of tasks")
    tasks = []
    for key, table in section.items():
        where = f"[tool.jobqueue.recurring.{key}]"
        if not isinstance(table, dict) or "job" not in table or "cron" not in table:
            raise ConfigurationError(f"{where} needs at least job = '...' and cron = '...'")
        unknown = set(table) - {"job", "cron", "timezone", "args", "kwargs", "queue", "priority"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        tasks.append(
            RecurringTask(
                key=key,
                cron=str(table["cron"]),
                job_name=str(table["job"]),
                timezone=str(table.get("timezone", "UTC")),
                args=tuple(table.get("args", ())),
                kwargs=dict(table.get("kwargs", {})),
                queue=table.get("queue"),
                priority=table.get("priority"),
            )
        )
    return tasks
