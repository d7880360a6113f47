"""Durable steps' rows (``job_steps``): read a job's recorded steps, record one, fenced like
every write of an attempt, and delete them.

Recording a step first locks the job's row through :data:`~jobqueue.store.attempts.FENCE`
(``SELECT … FOR UPDATE``; SQLite's write transaction is one writer already), so a stale
execution, whose attempt was rescued and perhaps claimed again, records nothing: a rescuer
that comes while the step is being recorded waits for it, and then finds the job as the step
left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)

from jobqueue.schema import job_queue, job_steps
from jobqueue.store.attempts import FENCE, fence_params
from jobqueue.store.claimed import ClaimedJob


@dataclass(frozen=True)
class StepRecord:
    """A step as recorded: done (``value`` its JSON result), or an ``iterate`` under way
    (``value`` its cursor)."""

    name: str
    attempt: int
    done: bool
    value: str | None
    recorded_at: datetime


def load_steps(connection: Connection, job_id: str) -> dict[str, StepRecord]:
    """Every recorded step of a job, by name."""
    rows = connection.execute(
        select(
            job_steps.c.name,
            job_steps.c.attempt,
            job_steps.c.done,
            job_steps.c.value,
            job_steps.c.recorded_at,
        ).where(job_steps.c.job_id == job_id)
    ).mappings()
    return {row["name"]: StepRecord(**row) for row in rows}


def steps_in_order(connection: Connection, job_id: str) -> list[StepRecord]:
    """A job's steps in the order they were recorded."""
    return sorted(load_steps(connection, job_id).values(), key=lambda s: (s.recorded_at, s.name))


@dataclass(frozen=True)
class StepSummary:
    """A recorded step as an operator sees it: the size of its value in bytes (None: no
    value), not the value, which may weigh megabytes."""

    name: str
    attempt: int
    done: bool
    recorded_at: datetime
    size: int | None


def step_summaries(connection: Connection, job_id: str) -> list[StepSummary]:
    """A job's steps in the order they were recorded (``jobs show``, the dashboard)."""
    size = _byte_length(connection.dialect.name, job_steps.c.value)
    rows = connection.execute(
        select(
            job_steps.c.name,
            job_steps.c.attempt,
            job_steps.c.done,
            job_steps.c.recorded_at,
            size.label("size"),
        ).where(job_steps.c.job_id == job_id)
    ).all()
    summaries = [
        StepSummary(name, attempt, bool(done), at, None if n is None else int(n))
        for name, attempt, done, at, n in rows
    ]
    return sorted(summaries, key=lambda s: (s.recorded_at, s.name))


def _byte_length(dialect: str, column: ColumnElement[str | None]) -> ColumnElement[int]:
    """Bytes of UTF-8 text: SQLite's length() counts characters unless handed a blob (and
    octet_length() needs SQLite 3.43)."""
    if dialect == "sqlite":
        return func.length(cast(column, LargeBinary))
    return func.octet_length(column)


def step_names(connection: Connection, job_id: str) -> list[str]:
    """The names of a job's steps in the order they were recorded, without their values."""
    rows = connection.execute(
        select(job_steps.c.recorded_at, job_steps.c.name).where(job_steps.c.job_id == job_id)
    ).all()
    return [name for _, name in sorted((at, name) for at, name in rows)]


def jobs_without_step(
    connection: Connection, job_ids: Sequence[str], name: str
) -> dict[str, list[str]]:
    """Those of ``job_ids`` that recorded no step ``name``, each with the names of the steps
    it did record (``jobs retry --from-step`` refuses them)."""
    names = {job_id: step_names(connection, job_id) for job_id in job_ids}
    return {job_id: found for job_id, found in names.items() if name not in found}


_LOCK_ATTEMPT = select(job_queue.c.id).where(*FENCE).with_for_update()


def hold_attempt(connection: Connection, job: ClaimedJob) -> bool:
    """Lock the job's row if this attempt still holds it; False if it does not (rescued,
    finished, or claimed again). Call first in the transaction that records a step."""
    held = connection.execute(_LOCK_ATTEMPT, fence_params(job.claimed_by, [job.fence]))
    return held.first() is not None


def record_step(
    connection: Connection,
    job: ClaimedJob,
    name: str,
    *,
    done: bool,
    value: str | None,
    now: datetime,
    exists: bool,
) -> None:
    """Write a step's row (``exists``: an ``iterate``'s cursor row is there already), after
    :func:`hold_attempt` said the attempt is still this one, in the same transaction."""
    values: dict[str, Any] = {
        "attempt": job.attempts,
        "done": done,
        "value": value,
        "recorded_at": now,
    }
    if exists:
        connection.execute(
            update(job_steps)
            .where(job_steps.c.job_id == job.id, job_steps.c.name == name)
            .values(**values)
        )
    else:
        connection.execute(insert(job_steps).values(job_id=job.id, name=name, **values))


def delete_steps(connection: Connection, job_ids: Sequence[str]) -> None:
    """Delete the steps of these jobs (pruned or discarded with them)."""
    if job_ids:
        connection.execute(delete(job_steps).where(job_steps.c.job_id.in_(list(job_ids))))


def drop_steps_from(connection: Connection, job_id: str, name: str) -> list[str]:
    """Forget step ``name`` of a job and every step recorded after it (``jobs retry
    --from-step``); returns the names dropped, empty if the job has no such step."""
    names = step_names(connection, job_id)
    if name not in names:
        return []
    dropped = names[names.index(name) :]
    connection.execute(
        delete(job_steps).where(job_steps.c.job_id == job_id, job_steps.c.name.in_(dropped))
    )
    return dropped
