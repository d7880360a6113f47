"""Job options: what ``@job(...)`` and ``class X(Job, ...)`` accept, their defaults, and the
checks that turn a bad option into a clear error at definition time, not at run time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypedDict, TypeGuard, Unpack

from jobqueue.rate_limits import rate_windows

DEFAULT_QUEUE = "default"
DEFAULT_PRIORITY = 0
DEFAULT_MAX_ATTEMPTS = 25
MAX_NAME_LENGTH = 255
MAX_QUEUE_LENGTH = 100
PRIORITY_RANGE = (-1_000_000, 1_000_000)

#: A backoff is a base delay in seconds, or a function of the failed-attempt count returning one.
Backoff = float | int | Callable[[int], float]
#: Exception classes for retry_on / discard_on.
ExceptionTypes = tuple[type[BaseException], ...]
#: Hook called with (job, exception) after a failed attempt; see jobqueue.context.
Hook = Callable[..., Any]


class OptionArgs(TypedDict, total=False):
    """The job options as keyword arguments of ``@job(...)``, ``class X(Job, ...)`` and
    :meth:`JobOptions.merged`: the one list of their names and types (``None``: unchanged).
    Their meaning and defaults are those of :class:`JobOptions`."""

    queue: str | None
    priority: int | None
    max_attempts: int | None
    backoff: Backoff | None
    timeout: float | timedelta | None
    retry_on: type[BaseException] | ExceptionTypes | None
    discard_on: type[BaseException] | ExceptionTypes | None
    on_failure: Hook | None
    on_retry: Hook | None
    unique: bool | None
    concurrency_key: str | Callable[..., str] | None
    concurrency_limit: int | None
    cron: str | None
    timezone: str | None
    expires_in: float | timedelta | None
    unique_key: str | Callable[..., str] | None
    debounce: float | timedelta | None
    rate_limit: str | None
    rate_limits: Sequence[str] | None
    rate_key: str | Callable[..., str] | None
    rate_cost: int | Callable[..., int] | None


@dataclass(frozen=True)
class JobOptions:
    """Per-job defaults. Queue, priority and max_attempts are stored on each row at enqueue;
    backoff and timeout are read from the registry when the job runs."""

    queue: str = DEFAULT_QUEUE
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: Backoff | None = None
    timeout: float | None = None
    #: Only these exceptions are retried (others fail the job at once); None retries all.
    retry_on: ExceptionTypes | None = None
    #: These exceptions end the job as ``cancelled`` (the error is kept), with no retry.
    discard_on: ExceptionTypes = ()
    on_failure: Hook | None = None
    on_retry: Hook | None = None
    #: While a job with the same name and arguments is unfinished (pending, blocked or running),
    #: enqueue returns that job instead of writing another.
    unique: bool = False
    #: At most ``concurrency_limit`` jobs with the same key run at once; the key is a string or
    #: a function of the job's arguments, and defaults to the job's name.
    concurrency_key: str | Callable[..., str] | None = None
    concurrency_limit: int | None = None
    #: A cron schedule (five fields, or six with seconds last) on which the supervisor
    #: enqueues this job without arguments, in ``timezone`` (default UTC).
    cron: str | None = None
    timezone: str | None = None
    #: Seconds after it is due by which a job must have started, else it ends ``expired``
    #: instead of running late (a retry that would start after that expires too).
    expires_in: float | None = None
    #: The unique key (a string, or a function of the job's arguments) instead of a digest of
    #: name and arguments; setting it makes the job unique.
    unique_key: str | Callable[..., str] | None = None
    #: Seconds of quiet: enqueues with the same unique key (``unique_key``, default the job's
    #: name) collapse into one job, which runs this long after the last of them, with its
    #: arguments.
    debounce: float | None = None
    #: Starts per sliding window (``"100/m"``, or several with ``rate_limits``), counted per
    #: ``rate_key`` (a string or a function of the arguments; default the job's name), each
    #: start costing ``rate_cost`` (default 1). See docs/flow-control.md.
    rate_limit: str | None = None
    rate_limits: Sequence[str] | None = None
    rate_key: str | Callable[..., str] | None = None
    rate_cost: int | Callable[..., int] | None = None
    #: The rate limits as stored (``"count/seconds,..."``), worked out by validation.
    rate_windows: str | None = None

    def merged(self, **overrides: Unpack[OptionArgs]) -> JobOptions:
        """A copy with the given non-``None`` options replaced, each validated; an unknown
        option is a TypeError naming it."""
        unknown = set(overrides) - set(OptionArgs.__annotations__)
        if unknown:
            raise TypeError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return validate_options(replace(self, **given))


def validate_options(options: JobOptions) -> JobOptions:
    """Check every option, raising ValueError naming the bad one; returns the options with
    shorthands normalized (a timedelta timeout as seconds, one exception class as a tuple)."""
    validate_queue_name(options.queue)
    validate_priority(options.priority)
    validate_max_attempts(options.max_attempts)
    options = _normalized(options)
    _check_callables(options)
    _check_schedule(options)
    _check_concurrency(options)
    _check_unique_key(options)
    return _check_rates(options)


def _normalized(options: JobOptions) -> JobOptions:
    changes: dict[str, Any] = {}
    for field_name in ("timeout", "expires_in", "debounce"):
        seconds = positive_seconds(field_name, getattr(options, field_name))
        if seconds != getattr(options, field_name):
            changes[field_name] = seconds
    for field_name in ("retry_on", "discard_on"):
        value = getattr(options, field_name)
        if value is None:
            continue
        if isinstance(value, type):
            value = changes[field_name] = (value,)
        if not isinstance(value, tuple) or not all(
            isinstance(v, type) and issubclass(v, BaseException) for v in value
        ):
            raise ValueError(f"{field_name} must be exception classes, not {value!r}")
    return replace(options, **changes) if changes else options


def positive_seconds(what: str, value: object) -> float | None:
    """A duration given as a ``timedelta`` or a number of seconds, as seconds (> 0)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(
            f"{what} must be a positive number of seconds or a timedelta, not {value!r}"
        )
    return float(value) if isinstance(value, int) else value


def _check_callables(options: JobOptions) -> None:
    for field_name in ("on_failure", "on_retry"):
        hook = getattr(options, field_name)
        if hook is not None and not callable(hook):
            raise ValueError(f"{field_name} must be callable, not {hook!r}")
    backoff = options.backoff
    if (
        backoff is not None
        and not callable(backoff)
        and (isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0)
    ):
        raise ValueError(f"backoff must be seconds >= 0 or a callable, not {backoff!r}")


def _check_schedule(options: JobOptions) -> None:
    if options.cron is not None:
        from croniter import croniter

        if not isinstance(options.cron, str) or not croniter.is_valid(options.cron):
            raise ValueError(
                f"cron must be a cron expression (five fields, or six with seconds last), "
                f"not {options.cron!r}"
            )
    if options.timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(options.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown time zone {options.timezone!r}") from None


def _check_rates(options: JobOptions) -> JobOptions:
    windows = rate_windows(
        options.rate_limit, options.rate_limits, options.rate_key, options.rate_cost
    )
    return replace(options, rate_windows=windows) if windows is not None else options


def _check_unique_key(options: JobOptions) -> None:
    key = options.unique_key
    if key is not None and not callable(key) and not (isinstance(key, str) and key):
        raise ValueError(f"unique_key must be a non-empty string or a function, not {key!r}")


def _check_concurrency(options: JobOptions) -> None:
    limit = options.concurrency_limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"concurrency_limit must be an integer >= 1, not {limit!r}")
    if options.concurrency_key is not None and limit is None:
        raise ValueError("concurrency_key needs a concurrency_limit")
    key = options.concurrency_key
    if key is not None and not callable(key) and not (isinstance(key, str) and key):
        raise ValueError(f"concurrency_key must be a string or a function, not {key!r}")


def validate_queue_name(queue: object) -> str:
    if not isinstance(queue, str) or not queue or len(queue) > MAX_QUEUE_LENGTH or queue == "*":
        raise ValueError(
            f"queue must be a non-empty string of at most {MAX_QUEUE_LENGTH} characters "
            f"other than '*', not {queue!r}"
        )
    return queue


def validate_priority(priority: object) -> int:
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise ValueError(f"priority must be an integer from {low} to {high}, not {priority!r}")
    return priority


def validate_max_attempts(max_attempts: object) -> int:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
    return max_attempts


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"a job name must be a non-empty string of at most {MAX_NAME_LENGTH} characters, "
            f"not {name!r}"
        )
    return name


DEPENDENCY_FAILURE_POLICIES = ("cancel", "run")


def dependency_ids(items: object) -> tuple[str, ...]:
    """``depends_on`` as job or batch ids, in order, each once: handles (anything with a
    string ``id``: an enqueued job, a batch, a job record) or ids."""
    if isinstance(items, str) or not isinstance(items, list | tuple):
        raise TypeError(
            "depends_on takes a list of jobs or batches (handles or ids), "
            f"not {type(items).__name__}"
        )
    ids: list[str] = []
    for item in items:
        job_id = item if isinstance(item, str) else getattr(item, "id", None)
        if not well_formed_id(job_id):
            raise ValueError(f"depends_on: {item!r} is not a job or batch (nor the id of one)")
        if job_id not in ids:
            ids.append(job_id)
    return tuple(ids)


#: Crockford's base 32, in which every job and batch id (a ULID) is written.
_ULID_CHARACTERS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def well_formed_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` could be a job's or a batch's id (a ULID) at all. The others are not
    looked up: a NUL byte in one is a PostgreSQL error rather than "no such job"."""
    return isinstance(value, str) and len(value) == 26 and set(value) <= _ULID_CHARACTERS


def validate_dependency_failure(policy: object) -> str:
    if policy not in DEPENDENCY_FAILURE_POLICIES:
        raise ValueError(f"on_dependency_failure must be 'cancel' or 'run', not {policy!r}")
    return str(policy)
