"""``job_recurring_runs``: one row per fired occurrence of a recurring task.

The primary key (task, fire time) lets exactly one of any number of schedulers record an
occurrence; the row is written in the transaction that enqueues the occurrence's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select

from jobqueue.schema import job_recurring_runs


def latest_runs(connection: Connection, tasks: Sequence[str]) -> dict[str, datetime]:
    """Each of these tasks' latest recorded occurrence (tasks never fired are absent)."""
    rows = connection.execute(
        select(job_recurring_runs.c.task, func.max(job_recurring_runs.c.fire_at))
        .where(job_recurring_runs.c.task.in_(list(tasks)))
        .group_by(job_recurring_runs.c.task)
    ).all()
    return {task: latest for task, latest in rows}


def record_run(connection: Connection, task: str, fire_at: datetime, job_id: str | None) -> None:
    """Record an occurrence; raises IntegrityError if another scheduler recorded it first."""
    connection.execute(insert(job_recurring_runs).values(task=task, fire_at=fire_at, job_id=job_id))


def prune_runs(connection: Connection, *, before: datetime) -> int:
    """Delete each task's occurrences older than ``before``, except its latest (the one new
    occurrences are compared with). Returns the rows deleted."""
    latest = connection.execute(
        select(job_recurring_runs.c.task, func.max(job_recurring_runs.c.fire_at)).group_by(
            job_recurring_runs.c.task
        )
    ).all()
    deleted = 0
    for task, fire_at in latest:
        result = connection.execute(
            delete(job_recurring_runs).where(
                job_recurring_runs.c.task == task,
                job_recurring_runs.c.fire_at < min(fire_at, before),
            )
        )
        deleted += result.rowcount
    return deleted
