"""Durable steps outside a worker: in :func:`jobqueue.testing.inline` mode each step's value is
recorded in memory on the job's :class:`InlineRun`, by the same JSON rules as a worker's record,
so a test sees what a worker would have recorded without a database or a worker; a direct call
of a job function just runs its steps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobqueue.database import Database
from jobqueue.serialization import decode_value, encode_value

T = TypeVar("T")


@dataclass
class InlineRun:
    """A job run by :func:`jobqueue.testing.inline`: what its steps recorded, in memory.

    ``steps`` maps each finished step's name to its record as a worker would store it: a
    step's result, an iteration's last cursor, a sleep's wake time (ISO 8601 text). Kept so a
    test can assert on a job's steps without a database or a worker."""

    job_id: str
    name: str
    #: Where ``transaction=True`` steps run (``inline(jobqueue=...)``); None: they are refused.
    database: Database | None = field(default=None, repr=False)
    steps: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    names: set[str] = field(default_factory=set, repr=False)


_inline: ContextVar[InlineRun | None] = ContextVar("jobqueue_steps_inline", default=None)


@contextmanager
def running_inline(run: InlineRun) -> Iterator[InlineRun]:
    """Record the steps of the job run inline in this block on ``run``."""
    token = _inline.set(run)
    try:
        yield run
    finally:
        _inline.reset(token)


def step_outside(
    name: str,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    transaction: bool,
) -> T:
    """A step outside a worker: a direct call just runs ``fn``; inline mode runs it and records
    its result (JSON round trip, as a worker's record would come back) on the job's run."""
    inline = inline_run(name)
    if inline is None:
        if transaction:
            raise RuntimeError(f"step {name!r} with transaction=True runs only inside a worker")
        return fn(*args, **kwargs)
    what = f"the result of step {name!r}"
    if not transaction:
        return record_inline(inline, name, fn(*args, **kwargs), what)  # type: ignore[no-any-return]
    if inline.database is None:
        raise RuntimeError(
            f"step {name!r} with transaction=True needs a database in inline mode: "
            "inline(jobqueue=<a JobQueue>) runs it in a transaction there"
        )
    with inline.database.transaction() as connection:
        return record_inline(inline, name, fn(connection, *args, **kwargs), what)  # type: ignore[no-any-return]


def inline_run(name: str) -> InlineRun | None:
    """The job running inline here, with ``name`` taken (names are unique within a run)."""
    inline = _inline.get()
    if inline is not None:
        if name in inline.names:
            raise ValueError(f"a step named {name!r} already ran in this job: names are unique")
        inline.names.add(name)
    return inline


def record_inline(inline: InlineRun, name: str, value: Any, what: str) -> Any:
    """Record ``value`` as step ``name`` of the inline run, as a worker would read it back."""
    inline.steps[name] = decoded = decode_value(encode_value(value, what=what))
    return decoded
