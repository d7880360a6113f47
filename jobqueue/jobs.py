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
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    Unpack,
    overload,
)

from jobqueue.call_builder import target_options
from jobqueue.calls import EnqueuedJob, JobCall
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
        # Function-like to inspect: inspect.iscoroutinefunction() (and so FastAPI, pytest's
        # asyncio plugins, asyncio.iscoroutinefunction) sees that calling it gives a coroutine.
        for attribute in ("__code__", "__defaults__", "__kwdefaults__"):
            if hasattr(definition.target, attribute):
                setattr(self, attribute, getattr(definition.target, attribute))

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

    def _enqueuer(self) -> Enqueuer[P]:
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

    def using(self, **changes: Unpack[UsingArgs]) -> Enqueuer[P]:
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


class _Performs(Protocol[P]):
    """A ``Job`` subclass, seen by a type checker through its ``perform`` parameters."""

    def perform(self, *args: P.args, **kwargs: P.kwargs) -> Any: ...


class _UsingCall(Protocol[P]):
    def __call__(self, **changes: Unpack[UsingArgs]) -> Enqueuer[P]: ...


class _FromPerform:
    """``Resize.enqueue`` and its siblings: the same method of a fresh
    :class:`~jobqueue.enqueuer.Enqueuer` for the class. Each subclass below only narrows
    ``__get__``'s type for checkers, which solve ``P`` from the owner's ``perform``; at run
    time they are all this."""

    _method = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._method = name

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        try:
            enqueuer = owner._enqueuer()
        except (TypeError, RegistryError) as error:  # Job itself, an abstract base
            return functools.partial(_refuse, error)  # introspection must not raise
        return getattr(enqueuer, self._method)


def _refuse(error: Exception, *args: object, **kwargs: object) -> Any:
    raise error


class _Enqueue(_FromPerform):
    if TYPE_CHECKING:

        def __get__(
            self, instance: object, owner: type[_Performs[P]]
        ) -> Callable[P, EnqueuedJob]: ...


class _EnqueueIn(_FromPerform):
    if TYPE_CHECKING:

        def __get__(
            self, instance: object, owner: type[_Performs[P]]
        ) -> Callable[Concatenate[timedelta, P], EnqueuedJob]: ...


class _EnqueueAt(_FromPerform):
    if TYPE_CHECKING:

        def __get__(
            self, instance: object, owner: type[_Performs[P]]
        ) -> Callable[Concatenate[datetime, P], EnqueuedJob]: ...


class _Call(_FromPerform):
    if TYPE_CHECKING:

        def __get__(self, instance: object, owner: type[_Performs[P]]) -> Callable[P, JobCall]: ...


class _Using(_FromPerform):
    if TYPE_CHECKING:

        def __get__(self, instance: object, owner: type[_Performs[P]]) -> _UsingCall[P]: ...


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
    def _enqueuer(cls) -> Enqueuer[...]:
        return Enqueuer(*target_options(cls))

    # Class attributes, not classmethods: typed from the subclass's ``perform`` (see
    # :class:`_FromPerform`), so ``Resize.enqueue(...)`` is checked like a ``@job`` call.
    enqueue: ClassVar[_Enqueue] = _Enqueue()
    enqueue_in: ClassVar[_EnqueueIn] = _EnqueueIn()
    enqueue_at: ClassVar[_EnqueueAt] = _EnqueueAt()
    call: ClassVar[_Call] = _Call()
    using: ClassVar[_Using] = _Using()
