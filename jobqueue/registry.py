"""The process-global registry: job name → how to run it.

A worker resolves a row only through this registry (never by importing what the database
says), so the name is the contract between producers and workers. It defaults to
``module.qualname`` and can be pinned with ``name=`` to survive refactors.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobqueue.errors import JobArgumentsError, RegistryError, UnknownJobError
from jobqueue.options import JobOptions, validate_name


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

    @functools.cached_property
    def signature(self) -> inspect.Signature | None:
        """What a call's arguments must fit (``perform``'s without ``self``); None where Python
        cannot tell (some builtins), which then accepts any arguments."""
        try:
            signature = inspect.signature(self.target)
        except (TypeError, ValueError):
            return None
        if self.job_class is not None:
            signature = signature.replace(parameters=list(signature.parameters.values())[1:])
        return signature

    @functools.cached_property
    def _positional_counts(self) -> tuple[int, int] | None:
        """(fewest, most) positional arguments a call without keywords may pass, where that
        alone decides whether it fits (no ``*args``, no required keyword-only parameter)."""
        signature = self.signature
        if signature is None:
            return None
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        fewest = most = 0
        for parameter in signature.parameters.values():
            if parameter.kind in positional:
                most += 1
                fewest += parameter.default is inspect.Parameter.empty
            elif parameter.kind is inspect.Parameter.VAR_POSITIONAL or (
                parameter.kind is inspect.Parameter.KEYWORD_ONLY
                and parameter.default is inspect.Parameter.empty
            ):
                return None
        return fewest, most

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise :class:`JobArgumentsError` if ``args``/``kwargs`` cannot be bound to the job.

        A call with positional arguments only is checked by counting them (this runs on every
        enqueue, bulk ones included); anything else goes through ``Signature.bind``."""
        counts = self._positional_counts
        if counts is not None and not kwargs and counts[0] <= len(args) <= counts[1]:
            return
        signature = self.signature
        if signature is None:
            return
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise JobArgumentsError(
                f"the arguments do not fit the job {self.name!r}{signature}: {error}"
            ) from None

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
