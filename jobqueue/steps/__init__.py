"""Durable steps: a job that dies in step 3 of 5 resumes at step 3.

``step(name, fn, ...)`` runs ``fn`` once per job: its JSON result is recorded in ``job_steps``
by a fenced write that commits before ``step`` returns, and every later attempt gets the
recorded value back without calling ``fn``. ``transaction=True`` hands ``fn`` a connection in
the transaction that records the step, so its own writes to the jobqueue database happen
exactly once. ``iterate`` saves a cursor as it goes; ``durable_sleep`` ends the run and resumes
the job after a delay, its slot free meanwhile. Steps are keyed by name, not by position, so a
step added in the middle of a job's code leaves the recorded ones valid.

Each record is fenced like every write of an attempt (see :mod:`jobqueue.store.steps`): an
execution whose attempt was rescued records nothing, and stops with
:class:`~jobqueue.errors.AttemptSupersededError`. Outside a worker (a direct call, inline
mode) steps simply run, iterations go to the end and sleeps return at once; in inline mode
(:func:`jobqueue.testing.inline`) each value is also recorded, in memory, on the job's
:class:`InlineRun`, by the same JSON rules, so a test sees what a worker would have recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from jobqueue.context import current_database, current_job, stopping
from jobqueue.database import Database
from jobqueue.errors import AttemptSupersededError
from jobqueue.retry import ReleaseAtStep, SleepUntil
from jobqueue.serialization import decode_value, encode_value
from jobqueue.steps.inline import InlineRun, inline_run, record_inline, running_inline, step_outside
from jobqueue.store import steps as store
from jobqueue.store.claimed import ClaimedJob
from jobqueue.store.steps import StepRecord

__all__ = ["InlineRun", "durable_sleep", "iterate", "running_inline", "step"]

T = TypeVar("T")
Item = TypeVar("Item")

#: ``iterate`` saves its cursor at least every this many items by default...
DEFAULT_EVERY_ITEMS = 100
#: ...and at least this often.
DEFAULT_EVERY_SECONDS = 5.0


@dataclass
class _Run:
    """One attempt's view of its job's steps: what was recorded, and the names used so far."""

    fence: tuple[str, int]
    recorded: dict[str, StepRecord]
    names: set[str] = field(default_factory=set)


_run: ContextVar[_Run | None] = ContextVar("jobqueue_steps_run", default=None)


def step(
    name: str, fn: Callable[..., T], /, *args: Any, transaction: bool = False, **kwargs: Any
) -> T:
    """Run ``fn(*args, **kwargs)`` once for this job and return its result; on every later
    attempt return the recorded result (strict JSON, so tuples come back as lists) without
    calling it. A step that raises records nothing, and the job's retry policy applies.

    ``transaction=True``: ``fn`` gets, first, a SQLAlchemy ``Connection`` in the transaction
    that records the step, so its writes to the jobqueue database commit with the record or
    not at all: they happen exactly once across kills and retries.
    """
    held = _attempt(name)
    if held is None:
        return step_outside(name, fn, args, kwargs, transaction=transaction)
    job, database, run = held
    recorded = run.recorded.get(name)
    if recorded is not None and recorded.done:
        return _decoded(recorded.value)  # type: ignore[no-any-return]
    _release_if_stopping()
    what = f"the result of step {name!r}"
    if transaction:
        with database.transaction() as connection:
            _hold(connection, job)
            text = encode_value(fn(connection, *args, **kwargs), what=what)
            _record(connection, job, run, name, done=True, value=text, held=True)
    else:
        text = encode_value(fn(*args, **kwargs), what=what)
        with database.transaction() as connection:
            _record(connection, job, run, name, done=True, value=text)
    return _decoded(text)  # type: ignore[no-any-return]


def iterate(
    name: str,
    source: Callable[[Any], Iterable[Item]],
    *,
    key: Callable[[Item], Any],
    every: int | timedelta | None = None,
) -> Iterator[Item]:
    """Yield the items of ``source(cursor)``, where ``cursor`` is ``None`` the first time and
    afterwards ``key`` of the last item handled, saved at least every ``every`` items (an int)
    or every ``every`` (a timedelta); by default every 100 items or 5 s, whichever comes
    first. A run that dies resumes after the last saved cursor, so an item is handled again
    only if it came after it. A finished iteration is a finished step: it yields nothing again.
    """
    items, seconds = _saving_policy(every)
    held = _attempt(name)
    if held is None:
        inline = inline_run(name)
        cursor = None
        for item in source(None):
            yield item
            cursor = key(item)
        if inline is not None:
            record_inline(inline, name, cursor, f"the cursor of iteration {name!r}")
        return
    job, database, run = held
    recorded = run.recorded.get(name)
    if recorded is not None and recorded.done:
        return
    cursor = _decoded(recorded.value) if recorded is not None else None
    unsaved, saved_at = 0, time.monotonic()
    for item in source(cursor):
        if stopping():
            _save(database, job, run, name, cursor, done=False)
            raise ReleaseAtStep()
        yield item
        cursor, unsaved = key(item), unsaved + 1
        if unsaved >= items or time.monotonic() - saved_at >= seconds:
            _save(database, job, run, name, cursor, done=False)
            unsaved, saved_at = 0, time.monotonic()
    _save(database, job, run, name, cursor, done=True)


def durable_sleep(name: str, until: timedelta | datetime) -> None:
    """End this run and resume the job after ``until`` (a delay, or an aware datetime): the
    job goes back to pending, its worker thread free for other jobs, no attempt counted; once
    due it runs again from the top, its finished steps returning their records, past here."""
    held = _attempt(name)
    if held is None:
        wake_at = _wake_time(until)  # bad input is an error everywhere
        inline = inline_run(name)
        if inline is not None:
            inline.steps[name] = wake_at.isoformat()
        return
    job, database, run = held
    recorded = run.recorded.get(name)
    if recorded is not None and recorded.done:
        wake_at = datetime.fromisoformat(_decoded(recorded.value))
        if datetime.now(UTC) >= wake_at:
            return
        raise SleepUntil(wake_at)
    _release_if_stopping()
    wake_at = _wake_time(until)
    text = encode_value(wake_at.isoformat())
    with database.transaction() as connection:
        _record(connection, job, run, name, done=True, value=text)
    raise SleepUntil(wake_at)


def _attempt(name: str) -> tuple[ClaimedJob, Database, _Run] | None:
    """The running attempt and its steps (loaded once per attempt), with ``name`` taken; None
    outside a worker."""
    if not isinstance(name, str) or not 0 < len(name) <= 255:
        raise ValueError(f"a step name is a string of 1 to 255 characters, not {name!r}")
    job, database = current_job(), current_database()
    if job is None or database is None:
        return None
    run = _run.get()
    if run is None or run.fence != job.fence:
        with database.transaction(read_only=True) as connection:
            run = _Run(job.fence, store.load_steps(connection, job.id))
        _run.set(run)
    if name in run.names:
        raise ValueError(f"a step named {name!r} already ran in this job: names are unique")
    run.names.add(name)
    return job, database, run


def _record(
    connection: Connection,
    job: ClaimedJob,
    run: _Run,
    name: str,
    *,
    done: bool,
    value: str | None,
    held: bool = False,
) -> None:
    if not held:
        _hold(connection, job)
    now = datetime.now(UTC)
    store.record_step(
        connection, job, name, done=done, value=value, now=now, exists=name in run.recorded
    )
    run.recorded[name] = StepRecord(name, job.attempts, done, value, now)


def _save(
    database: Database, job: ClaimedJob, run: _Run, name: str, cursor: Any, *, done: bool
) -> None:
    text = encode_value(cursor, what=f"the cursor of iteration {name!r}")
    with database.transaction() as connection:
        _record(connection, job, run, name, done=done, value=text)


def _hold(connection: Connection, job: ClaimedJob) -> None:
    if not store.hold_attempt(connection, job):
        raise AttemptSupersededError(
            f"attempt {job.attempts} of job {job.id} is no longer running here (it was rescued "
            "or has ended): its steps are not recorded"
        )


def _release_if_stopping() -> None:
    if stopping():
        raise ReleaseAtStep()


def _decoded(text: str | None) -> Any:
    return decode_value(text) if text is not None else None


def _saving_policy(every: int | timedelta | None) -> tuple[int, float]:
    if every is None:
        return DEFAULT_EVERY_ITEMS, DEFAULT_EVERY_SECONDS
    if isinstance(every, timedelta):
        return 2**62, max(0.0, every.total_seconds())
    if isinstance(every, int) and every >= 1:
        return every, float("inf")
    raise ValueError(f"every is a number of items (>= 1) or a timedelta, not {every!r}")


def _wake_time(until: timedelta | datetime) -> datetime:
    if isinstance(until, timedelta):
        return datetime.now(UTC) + until
    if isinstance(until, datetime) and until.utcoffset() is not None:
        return until.astimezone(UTC)
    raise ValueError(f"durable_sleep takes a timedelta or an aware datetime, not {until!r}")
