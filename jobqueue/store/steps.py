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

from sqlalchemy import Connection, delete, insert, select, update

from jobqueue.schema import job_queue, job_steps
from jobqueue.store.attempts import FENCE, fence_params
from jobqueue.store.claims import ClaimedJob


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
    """A job's steps in the order they were recorded (for ``jobs show`` and the dashboard)."""
    return sorted(load_steps(connection, job_id).values(), key=lambda s: (s.recorded_at, s.name))


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
    ordered = steps_in_order(connection, job_id)
    names = [step.name for step in ordered]
    if name not in names:
        return []
    dropped = names[names.index(name) :]
    connection.execute(
        delete(job_steps).where(job_steps.c.job_id == job_id, job_steps.c.name.in_(dropped))
    )
    return dropped
