"""Recurring tasks: cron schedules enqueued by the supervisor, each occurrence exactly once.

A task is a cron expression (five fields, or six with seconds last), a time zone, and the job
to enqueue with its arguments. Tasks come from ``@job(cron=..., timezone=...)`` and from
``[tool.jobqueue.recurring.<task>]`` in pyproject.toml.

Every occurrence is claimed by inserting ``(task, UTC fire time)`` into ``job_recurring_runs``
in the same transaction as the enqueue; the primary key lets exactly one of any number of
supervisors win. Only the latest occurrence that is due is ever enqueued, so downtime yields one
catch-up run, not a backfill; on a task's first-ever start the current occurrence is recorded
as a baseline and not run. Occurrences are computed in local wall-clock time and then placed on
the UTC time line: a wall time that does not exist (the spring-forward gap) is skipped, and a
repeated one (the fall-back hour) fires once, at its first instance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from croniter import croniter
from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from jobqueue.enqueue import JobCall
from jobqueue.errors import ConfigurationError
from jobqueue.queue import JobQueue
from jobqueue.registry import Registry, registry
from jobqueue.schema import job_recurring_runs

log = structlog.get_logger("jobqueue.scheduler")

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

    def call(self, registry_: Registry, fire_at: datetime) -> JobCall:
        definition = registry_.find(self.job_name)
        options = definition.options if definition is not None else None
        return JobCall(
            self.job_name,
            args=tuple(self.args),
            kwargs=dict(self.kwargs),
            queue=self.queue or (options.queue if options else "default"),
            priority=self.priority
            if self.priority is not None
            else (options.priority if options else 0),
            max_attempts=options.max_attempts if options else 25,
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


#: How long recorded occurrences are kept (the latest of each task is always kept).
RUNS_KEPT = timedelta(days=1)


class Scheduler:
    """Enqueues due occurrences; call :meth:`tick` about once a second."""

    def __init__(self, jobqueue: JobQueue, tasks: Sequence[RecurringTask]) -> None:
        keys = [task.key for task in tasks]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise ConfigurationError(f"recurring task(s) defined twice: {', '.join(duplicates)}")
        self.jobqueue = jobqueue
        self.tasks = list(tasks)
        self._latest: dict[str, datetime | None] = {}

    def tick(self, now: datetime | None = None) -> list[str]:
        """Enqueue whatever became due; returns the ids of the jobs this call enqueued."""
        now = now or datetime.now(UTC)
        if self.tasks and not self._latest:
            self._load()
        enqueued = []
        for task in self.tasks:
            occurrence = task.latest_occurrence(now)
            latest = self._latest.get(task.key)
            if occurrence is None or (latest is not None and occurrence <= latest):
                continue
            job_id = self._fire(task, occurrence, baseline=latest is None)
            self._latest[task.key] = occurrence
            if job_id is not None:
                enqueued.append(job_id)
        return enqueued

    def _load(self) -> None:
        with self.jobqueue.transaction(read_only=True) as connection:
            rows = connection.execute(
                select(job_recurring_runs.c.task, func.max(job_recurring_runs.c.fire_at))
                .where(job_recurring_runs.c.task.in_([task.key for task in self.tasks]))
                .group_by(job_recurring_runs.c.task)
            ).all()
        self._latest = {task.key: None for task in self.tasks}
        self._latest.update({task: latest for task, latest in rows})

    def _fire(self, task: RecurringTask, fire_at: datetime, *, baseline: bool) -> str | None:
        """Record the occurrence and enqueue its job, unless another supervisor already did
        (or, on a first-ever start, only record it)."""
        try:
            with self.jobqueue.transaction() as connection:
                job_id = None if baseline else self._enqueue(connection, task, fire_at)
                connection.execute(
                    insert(job_recurring_runs).values(task=task.key, fire_at=fire_at, job_id=job_id)
                )
        except IntegrityError:
            return None  # another scheduler fired this occurrence: the whole transaction is undone
        if job_id is not None:
            log.info(
                "recurring_task_enqueued",
                task=task.key,
                job_id=job_id,
                job_name=task.job_name,
                fire_at=fire_at.isoformat(),
            )
        return job_id

    def _enqueue(self, connection: Connection, task: RecurringTask, fire_at: datetime) -> str:
        (handle,) = self.jobqueue.enqueue_many(
            [task.call(registry, fire_at)], connection=connection
        )
        return handle.id

    def prune_runs(self, *, keep: timedelta = RUNS_KEPT, now: datetime | None = None) -> int:
        """Delete each task's recorded occurrences older than ``keep``, except its latest.

        Only the latest occurrence is ever compared against (a later one is fired, an earlier
        one never), so the rest is history; without pruning, a task that fires every minute
        would leave half a million rows a year. The margin of ``keep`` covers a supervisor whose
        clock runs behind: it may still try an occurrence the others recorded a while ago, and
        that occurrence's row must still be there to refuse it. Returns the rows deleted.
        """
        cutoff = (now or datetime.now(UTC)) - keep
        deleted = 0
        with self.jobqueue.transaction() as connection:
            latest = connection.execute(
                select(job_recurring_runs.c.task, func.max(job_recurring_runs.c.fire_at)).group_by(
                    job_recurring_runs.c.task
                )
            ).all()
            for task, fire_at in latest:
                result = connection.execute(
                    delete(job_recurring_runs).where(
                        job_recurring_runs.c.task == task,
                        job_recurring_runs.c.fire_at < min(fire_at, cutoff),
                    )
                )
                deleted += result.rowcount
        return deleted

    def next_runs(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """Each task's next fire time (for the dashboard and ``jobrunner recurring``)."""
        now = now or datetime.now(UTC)
        result: dict[str, datetime | None] = {}
        for task in self.tasks:
            tz = zone(task.timezone, task.key)
            times = croniter(task.cron, now.astimezone(tz).replace(tzinfo=None))
            result[task.key] = None
            for _ in range(_MAX_GAP_STEPS):
                instant = to_utc(times.get_next(datetime), tz)
                if instant is not None and instant > now:
                    result[task.key] = instant
                    break
        return result
