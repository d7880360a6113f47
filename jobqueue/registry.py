"""The process-global registry: job name → how to run it.

A worker resolves a row only through this registry (never by importing what the database
says), so the name is the contract between producers and workers. It defaults to
``module.qualname`` and can be pinned with ``name=`` to survive refactors.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from jobqueue.errors import RegistryError, UnknownJobError

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
#: Hook called with (job, exception) after a failed attempt; see jobqueue.execution.
Hook = Callable[..., Any]


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
    #: While a job with the same name and arguments is pending or running, enqueue returns it.
    unique: bool = False
    #: At most ``concurrency_limit`` jobs with the same key run at once; the key is a string or
    #: a function of the job's arguments, and defaults to the job's name.
    concurrency_key: str | Callable[..., str] | None = None
    concurrency_limit: int | None = None
    #: A cron schedule (five fields, or six with seconds last) on which the supervisor
    #: enqueues this job without arguments, in ``timezone`` (default UTC).
    cron: str | None = None
    timezone: str | None = None

    def merged(self, **overrides: Any) -> JobOptions:
        """A copy with the given non-``None`` options replaced, each validated."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return validate_options(replace(self, **given))


def validate_options(options: JobOptions) -> JobOptions:
    validate_queue_name(options.queue)
    validate_priority(options.priority)
    validate_max_attempts(options.max_attempts)
    timeout: Any = options.timeout
    if isinstance(timeout, timedelta):
        options = replace(options, timeout=timeout.total_seconds())
        timeout = options.timeout
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    for field_name in ("retry_on", "discard_on"):
        value = getattr(options, field_name)
        if value is None:
            continue
        if isinstance(value, type):
            value = (value,)
            changes: dict[str, Any] = {field_name: value}
            options = replace(options, **changes)
        if not isinstance(value, tuple) or not all(
            isinstance(v, type) and issubclass(v, BaseException) for v in value
        ):
            raise ValueError(f"{field_name} must be exception classes, not {value!r}")
    for field_name in ("on_failure", "on_retry"):
        hook = getattr(options, field_name)
        if hook is not None and not callable(hook):
            raise ValueError(f"{field_name} must be callable, not {hook!r}")
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
    limit = options.concurrency_limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"concurrency_limit must be an integer >= 1, not {limit!r}")
    if options.concurrency_key is not None and limit is None:
        raise ValueError("concurrency_key needs a concurrency_limit")
    key = options.concurrency_key
    if key is not None and not callable(key) and not (isinstance(key, str) and key):
        raise ValueError(f"concurrency_key must be a string or a function, not {key!r}")
    backoff = options.backoff
    if (
        backoff is not None
        and not callable(backoff)
        and (isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0)
    ):
        raise ValueError(f"backoff must be seconds >= 0 or a callable, not {backoff!r}")
    return options


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


@dataclass(frozen=True)
class JobDefinition:
    """A registered job: its name, what to call, and its options."""

    name: str
    target: Callable[..., Any]
    options: JobOptions = field(default_factory=JobOptions)
    #: For class-based jobs: the class; ``target`` is then its ``perform`` method.
    job_class: type | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.target)

    def callable_for_run(self) -> Callable[..., Any]:
        """What a worker calls: the function, or ``perform`` bound to a fresh instance."""
        if self.job_class is not None:
            perform: Callable[..., Any] = self.job_class().perform  # a fresh instance per run
            return perform
        return self.target


def default_name(target: Callable[..., Any] | type) -> str:
    """``module.qualname``; refused where a worker could not find the same name."""
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not module or not qualname:
        raise RegistryError(f"{target!r} has no module and qualified name; pass name=")
    if module == "__main__":
        raise RegistryError(
            f"{qualname} is defined in __main__, where a worker importing your module would "
            "register it under another name; pass an explicit name=, e.g. "
            f"@job(name='myapp.{qualname}')"
        )
    if "<locals>" in qualname:
        raise RegistryError(
            f"{module}.{qualname} is defined inside a function, so it has no stable name; "
            "pass an explicit name="
        )
    return f"{module}.{qualname}"


def _same_origin(a: Callable[..., Any] | type | None, b: Callable[..., Any] | type | None) -> bool:
    """True when ``a`` and ``b`` are the same definition, e.g. before and after a reload.

    A module-level definition is known by its module and qualified name, which a reload keeps.
    Lambdas and definitions inside a function share their qualified name with every other one
    written the same way, so they must be the same object, or the same source (file and first
    line: the enclosing function run again, or its module reloaded).
    """
    if a is b:
        return True
    if a is None or b is None:
        return False
    module = getattr(a, "__module__", None)
    qualname = getattr(a, "__qualname__", None)
    if (
        not isinstance(qualname, str)
        or not module
        or module != getattr(b, "__module__", None)
        or qualname != getattr(b, "__qualname__", None)
    ):
        return False
    if "<locals>" not in qualname and "<lambda>" not in qualname:
        return True
    where = _source_location(a)
    return where is not None and where == _source_location(b)


def _source_location(target: Callable[..., Any] | type) -> tuple[str, int] | None:
    """(file, first line) of a function, or of the first method a class defines itself."""
    candidates = vars(target).values() if isinstance(target, type) else (target,)
    for candidate in candidates:
        code = getattr(inspect.unwrap(candidate), "__code__", None) if callable(candidate) else None
        if code is not None:
            return (code.co_filename, code.co_firstlineno)
    return None


class Registry:
    """Name → :class:`JobDefinition`, safe to use from several threads."""

    def __init__(self) -> None:
        self._definitions: dict[str, JobDefinition] = {}
        self._lock = threading.Lock()

    def register(self, definition: JobDefinition) -> JobDefinition:
        """Add ``definition``; the same code registered again (a reload) replaces its entry."""
        validate_name(definition.name)
        with self._lock:
            existing = self._definitions.get(definition.name)
            if existing is not None:
                old = existing.job_class or existing.target
                new = definition.job_class or definition.target
                if not _same_origin(old, new):
                    raise RegistryError(
                        f"the job name {definition.name!r} is already registered for "
                        f"{_describe(old)}; cannot register {_describe(new)} under it too"
                    )
            self._definitions[definition.name] = definition
        return definition

    def unregister(self, name: str) -> None:
        with self._lock:
            self._definitions.pop(name, None)

    def get(self, name: str) -> JobDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownJobError(
                f"no job is registered under the name {name!r} in this process; "
                "is its module imported (jobrunner work --app MODULE)?"
            ) from None

    def find(self, name: str) -> JobDefinition | None:
        return self._definitions.get(name)

    def names(self) -> list[str]:
        return sorted(self._definitions)


def _describe(target: Callable[..., Any] | type | None) -> str:
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


#: The registry every ``@job`` and ``Job`` subclass registers in.
registry = Registry()
