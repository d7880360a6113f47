"""The one place a job's options and one call's arguments become a :class:`~jobqueue.calls.JobCall`:
where the unique key, the concurrency key and the deadline are worked out, and what can be
enqueued at all (a ``@job`` function, a ``Job`` subclass, a name)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue.calls import JobCall, check_arguments, plain_call
from jobqueue.errors import RegistryError
from jobqueue.options import JobOptions, validate_name
from jobqueue.registry import JobDefinition, registry
from jobqueue.serialization import canonical_digest


def build_call(
    name: str,
    options: JobOptions,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    scheduled_for: datetime | None = None,
    unique_key: str | None = None,
    depends_on: tuple[str, ...] = (),
    on_dependency_failure: str = "cancel",
    expires_at: datetime | None = None,
) -> JobCall:
    """A job's options and one call's arguments as a :class:`JobCall`: where the unique key
    (a digest of name and arguments) and the concurrency key (a string, or a function of the
    arguments, default the job's name) are worked out."""
    if unique_key is None:
        unique_key = _unique_key(name, options, args, kwargs)
    plain = on_dependency_failure == "cancel" and unique_key is None
    if plain and _only_arguments(options, scheduled_for, depends_on, expires_at):
        return plain_call(name, args, kwargs, options)
    if expires_at is None and options.expires_in is not None:
        due = scheduled_for or datetime.now(UTC)
        expires_at = due + timedelta(seconds=options.expires_in)
    limit = options.concurrency_limit
    concurrency_key = None
    if limit is not None:
        concurrency_key = _of_arguments(options.concurrency_key, name, args, kwargs) or name
    rate_key = rate_cost = None
    if options.rate_windows is not None:
        rate_key = _of_arguments(options.rate_key, name, args, kwargs) or name
        rate_cost = _of_arguments(options.rate_cost, name, args, kwargs)
    return JobCall(
        name=name,
        args=args,
        kwargs=kwargs,
        queue=options.queue,
        priority=options.priority,
        max_attempts=options.max_attempts,
        scheduled_for=scheduled_for,
        unique_key=unique_key,
        concurrency_key=concurrency_key,
        concurrency_limit=limit,
        depends_on=depends_on,
        on_dependency_failure=on_dependency_failure,
        expires_at=expires_at,
        debounce=options.debounce,
        rate_key=rate_key,
        rate_limits=options.rate_windows,
        rate_cost=rate_cost,
    )


def _only_arguments(
    options: JobOptions,
    scheduled_for: datetime | None,
    depends_on: tuple[str, ...],
    expires_at: datetime | None,
) -> bool:
    """Whether the call is arguments and the job's checked options only (:func:`plain_call`)."""
    return (
        scheduled_for is None
        and not depends_on
        and expires_at is None
        and options.expires_in is None
        and options.concurrency_limit is None
        and options.rate_windows is None
        and options.debounce is None
    )


def _of_arguments(option: Any, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """An option given as a value or as a function of the job's arguments (a key, a cost)."""
    if not callable(option):
        return option
    try:
        return option(*args, **kwargs)
    except TypeError:
        check_arguments(name, args, kwargs)  # the clearer error, if that is the cause
        raise


def _unique_key(
    name: str, options: JobOptions, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> str | None:
    """The option's key (a string, or a function of the arguments); else, for a unique job, a
    digest of name and arguments; else, for a debounced one, its name (its arguments change
    from call to call: they are what debounce keeps the latest of)."""
    key: str | None = _of_arguments(options.unique_key, name, args, kwargs)
    if key is not None:
        return key
    if options.unique:
        return canonical_digest([name, list(args), dict(kwargs)])
    return name if options.debounce is not None else None


def target_options(target: object) -> tuple[str, JobOptions]:
    """(name, options) of what can be enqueued: a ``@job`` function or ``Job`` subclass (each
    carries its registered ``definition``), or a job name (options from the registry if it is
    registered in this process, else the defaults)."""
    if isinstance(target, str):
        validate_name(target)
        definition = registry.find(target)
        return target, definition.options if definition is not None else JobOptions()
    definition = getattr(target, "definition", None)
    if isinstance(definition, JobDefinition):
        if isinstance(target, type) and definition.job_class is not target:
            raise RegistryError(f"{target.__qualname__} is abstract and cannot be enqueued")
        return definition.name, definition.options
    raise TypeError(f"expected a @job function, a Job subclass or a job name, not {target!r}")
