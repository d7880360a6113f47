"""Defining jobs: the ``@job`` decorator and the ``Job`` base class.

Both register a :class:`~jobqueue.registry.JobDefinition` (their options listed once, in
:class:`~jobqueue.registry.OptionArgs`) and offer the same enqueue methods (``enqueue``,
``enqueue_in``, ``enqueue_at``, ``using``, ``call``), which hand over to an
:class:`~jobqueue.enqueuer.Enqueuer`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar, Unpack, overload

from jobqueue.calls import EnqueuedJob, JobCall, target_options
from jobqueue.enqueuer import Enqueuer, UsingArgs
from jobqueue.errors import RegistryError
from jobqueue.options import JobOptions, OptionArgs, validate_options
from jobqueue.registry import JobDefinition, default_name, registry

P = ParamSpec("P")
R = TypeVar("R")


class JobFunction(Generic[P, R]):
    """A function registered with ``@job``: call it directly, or enqueue it for a worker."""

    def __init__(self, definition: JobDefinition) -> None:
        self.definition = definition
        self.__wrapped__ = definition.target
        functools.update_wrapper(self, definition.target)

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def options(self) -> JobOptions:
        return self.definition.options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.definition.target(*args, **kwargs)
        return result

    def __repr__(self) -> str:
        return f"<job {self.name!r}>"

    def _enqueuer(self) -> Enqueuer:
        return Enqueuer(self.definition.name, self.definition.options)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Run as soon as a worker is free."""
        return self._enqueuer().enqueue(*args, **kwargs)

    def enqueue_in(self, delay: timedelta, /, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Run after ``delay``."""
        return self._enqueuer().enqueue_in(delay, *args, **kwargs)

    def enqueue_at(self, when: datetime, /, *args: P.args, **kwargs: P.kwargs) -> EnqueuedJob:
        """Run at ``when``, an aware datetime."""
        return self._enqueuer().enqueue_at(when, *args, **kwargs)

    def call(self, *args: P.args, **kwargs: P.kwargs) -> JobCall:
        """A :class:`JobCall` for ``enqueue_many``."""
        return self._enqueuer().call(*args, **kwargs)

    def using(self, **changes: Unpack[UsingArgs]) -> Enqueuer:
        """Enqueue with other options, or inside your own transaction (``connection=``,
        ``session=``)."""
        return self._enqueuer().using(**changes)


@overload
def job(function: Callable[P, R], /) -> JobFunction[P, R]: ...


@overload
def job(
    *, name: str | None = None, **options: Unpack[OptionArgs]
) -> Callable[[Callable[P, R]], JobFunction[P, R]]: ...


def job(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    **options: Unpack[OptionArgs],
) -> JobFunction[P, R] | Callable[[Callable[P, R]], JobFunction[P, R]]:
    """Register a function (plain or ``async def``) as a job, with ``@job`` or ``@job(...)``.

    ``name`` defaults to ``module.qualname``; set it explicitly so queued jobs survive a rename.
    ``retry_on`` limits retries to those exceptions (others fail at once); ``discard_on`` ends
    the job as ``cancelled`` on those; ``on_failure(job, error)`` / ``on_retry(job, error)`` are
    called after an attempt fails for good / will be retried. ``unique=True``: while a job with
    the same name and arguments is unfinished (pending, blocked or running), enqueue returns
    that one instead. ``concurrency_limit=N`` (with an optional ``concurrency_key``, a string or
    a function of the arguments, default the job's name): at most N such jobs run at once; the
    others wait as ``blocked``. ``cron="*/5 * * * *"`` (and ``timezone=``) makes it a recurring
    task that the supervisor enqueues on that schedule.
    """
    merged = JobOptions().merged(**options)

    def register(target: Callable[P, R]) -> JobFunction[P, R]:
        if isinstance(target, JobFunction):
            raise RegistryError(f"{target!r} is already a job")
        if not callable(target) or inspect.isclass(target):
            raise RegistryError(
                f"@job decorates functions; subclass jobqueue.Job for classes, not {target!r}"
            )
        definition = JobDefinition(name or default_name(target), target, merged)
        return JobFunction(registry.register(definition))

    if function is not None:
        return register(function)
    return register


class Job:
    """Base class for class-based jobs: implement ``perform`` (plain or ``async def``).

    Options are class keywords::

        class Resize(Job, name="images.resize", queue="images", timeout=60):
            def perform(self, path: str) -> None: ...

        Resize.enqueue("a.png")

    A fresh instance runs each attempt. A subclass inherits its parent's options (but not its
    name); pass ``abstract=True`` for a base class that is not itself a job.
    """

    definition: ClassVar[JobDefinition]

    def __init_subclass__(
        cls, *, name: str | None = None, abstract: bool = False, **options: Unpack[OptionArgs]
    ) -> None:
        super().__init_subclass__()
        parent = next(
            (
                base.__dict__["definition"]
                for base in cls.__mro__[1:]
                if "definition" in base.__dict__
            ),
            None,
        )
        merged = (parent.options if parent else JobOptions()).merged(**options)
        if abstract:
            cls.definition = JobDefinition("<abstract>", cls.perform, validate_options(merged))
            return
        if cls.perform is Job.perform:
            raise RegistryError(f"{cls.__qualname__} must implement perform()")
        definition = JobDefinition(name or default_name(cls), cls.perform, merged, job_class=cls)
        cls.definition = registry.register(definition)

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def _enqueuer(cls) -> Enqueuer:
        return Enqueuer(*target_options(cls))

    @classmethod
    def enqueue(cls, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Run as soon as a worker is free."""
        return cls._enqueuer().enqueue(*args, **kwargs)

    @classmethod
    def enqueue_in(cls, delay: timedelta, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Run after ``delay``."""
        return cls._enqueuer().enqueue_in(delay, *args, **kwargs)

    @classmethod
    def enqueue_at(cls, when: datetime, /, *args: Any, **kwargs: Any) -> EnqueuedJob:
        """Run at ``when``, an aware datetime."""
        return cls._enqueuer().enqueue_at(when, *args, **kwargs)

    @classmethod
    def call(cls, *args: Any, **kwargs: Any) -> JobCall:
        """A :class:`JobCall` for ``enqueue_many``."""
        return cls._enqueuer().call(*args, **kwargs)

    @classmethod
    def using(cls, **changes: Unpack[UsingArgs]) -> Enqueuer:
        """Enqueue with other options, or inside your own transaction."""
        return cls._enqueuer().using(**changes)
