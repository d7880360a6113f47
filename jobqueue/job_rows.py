"""Calls become job rows: each call's values for :data:`~jobqueue.store.bulk.ENQUEUE_COLUMNS`
(its id made, its arguments encoded) and the handle enqueue returns; as dictionaries with the
flow-control columns a call sets, for the general write; and which batches are plain enough to
be written straight from the value tuples (the batch enqueue's fast path)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.database import Database
from jobqueue.ids import new_ids
from jobqueue.queue_config import QueueConfig
from jobqueue.schema import PENDING
from jobqueue.serialization import encode_arguments
from jobqueue.store.bulk import ENQUEUE_COLUMNS


def job_values(
    database: Database, calls: Sequence[JobCall], max_payload_bytes: int, trace_context: str | None
) -> tuple[list[tuple[Any, ...]], list[EnqueuedJob]]:
    """Each call's row as a tuple in the order of ENQUEUE_COLUMNS, and its handle. A batch
    shares one ``now`` (its ``created_at``, and the start of every call not scheduled)."""
    now = datetime.now(UTC)
    values: list[tuple[Any, ...]] = []
    handles: list[EnqueuedJob] = []
    for call, job_id in zip(calls, new_ids(len(calls)), strict=True):
        scheduled_for = call.scheduled_for or now
        if call.debounce is not None:  # after the quiet, which each later call prolongs
            scheduled_for += timedelta(seconds=call.debounce)
        unique_key = call.unique_key
        values.append(
            (
                job_id,
                call.name,
                encode_arguments(call.args, call.kwargs, max_bytes=max_payload_bytes),
                call.queue,
                call.priority,
                PENDING,
                scheduled_for,
                0,  # attempts
                0,  # failed_attempts
                call.max_attempts,
                now,  # created_at
                call.concurrency_key,
                hashlib.sha256(unique_key.encode()).hexdigest() if unique_key is not None else None,
                trace_context,
            )
        )
        handles.append(_handle(job_id, call.name, call.queue, scheduled_for, database))
    return values, handles


def _handle(
    job_id: str, name: str, queue: str, scheduled_for: datetime, database: Database
) -> EnqueuedJob:
    """The :class:`EnqueuedJob` of a job being written, made without the frozen dataclass's
    ``__init__``, which sets each field through ``object.__setattr__`` (0.7 us a row, against
    0.2 this way); the fields not set here keep their class defaults."""
    handle = object.__new__(EnqueuedJob)
    fields = handle.__dict__
    fields["id"] = job_id
    fields["name"] = name
    fields["queue"] = queue
    fields["scheduled_for"] = scheduled_for
    fields["jobqueue"] = database
    return handle


def job_rows(
    database: Database, calls: Sequence[JobCall], max_payload_bytes: int, trace_context: str | None
) -> tuple[list[dict[str, Any]], list[EnqueuedJob]]:
    """:func:`job_values` as dictionaries, each with the flow-control columns its call sets
    (a plain job's row binds none of them)."""
    values, handles = job_values(database, calls, max_payload_bytes, trace_context)
    rows: list[dict[str, Any]] = [
        dict(zip(ENQUEUE_COLUMNS, value, strict=True)) for value in values
    ]
    queue_rates = queue_rate_limits(database)
    for call, row in zip(calls, rows, strict=True):
        if queue_rates or not _without_flow_control(call):
            row.update(_flow_columns(call, queue_rates))
    return rows, handles


def is_plain_batch(database: Database, calls: Sequence[JobCall]) -> bool:
    """Whether every call can be written straight from its values: nothing to look up or wait
    for (no unique key, debounce, dependency, concurrency or rate limit, expiry), into queues
    that are neither bounded nor rate-limited. One call goes its own way (a single INSERT)."""
    if len(calls) < 2:
        return False
    configured = queue_bounds(database).keys() | queue_rate_limits(database).keys()
    return all(
        call.unique_key is None
        and call.debounce is None
        and not call.depends_on
        and call.concurrency_limit is None
        and call.queue not in configured
        and _without_flow_control(call)
        for call in calls
    )


def _without_flow_control(call: JobCall) -> bool:
    return (
        call.expires_at is None
        and call.rate_key is None
        and call.rate_limits is None
        and call.rate_cost is None
    )


def _flow_columns(call: JobCall, queue_rates: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The flow-control columns a call sets."""
    flow = {
        "expires_at": call.expires_at,
        "rate_key": call.rate_key,
        "rate_cost": call.rate_cost,
        "rate_limits": call.rate_limits,
        **(queue_rates.get(call.queue, {}) if call.rate_key is None else {}),
    }
    return {column: value for column, value in flow.items() if value is not None}


def queue_rate_limits(database: Database) -> dict[str, dict[str, Any]]:
    """For each queue with a rate limit of its own (``[tool.jobqueue.queues.NAME]``), what a
    job without one is written with: the key ``queue:NAME`` and the queue's windows."""
    configs: Mapping[str, QueueConfig] = getattr(database, "queue_configs", None) or {}
    return {
        name: {"rate_key": f"queue:{name}", "rate_limits": config.rate_windows}
        for name, config in configs.items()
        if config.rate_windows is not None
    }


def queue_bounds(database: Database) -> Mapping[str, int]:
    """The bounded queues' ``max_pending`` (a :class:`~jobqueue.queue.JobQueue` has them; a
    bare :class:`~jobqueue.database.Database` bounds nothing)."""
    bounds: Mapping[str, int] | None = getattr(database, "max_pending", None)
    return bounds or {}
