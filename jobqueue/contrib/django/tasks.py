"""Django tasks as jobqueue jobs: each task is registered under its module path, with a runner
(:func:`jobqueue.contrib.django.running.run_task`) as what a worker calls and the task
function's own signature (less ``context``) for checking arguments at enqueue."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from django.tasks import Task

from jobqueue.contrib.django.known import remember
from jobqueue.contrib.django.running import run_task
from jobqueue.options import JobOptions
from jobqueue.registry import JobDefinition, registry


def register_task(task: Task, max_attempts: int) -> None:
    """Register ``task`` (once per module path: ``using()`` copies are the same task)."""
    if not remember(task):
        return
    registry.register(
        JobDefinition(
            name=task.module_path,
            target=_runner(task),
            options=JobOptions(queue=task.queue_name, max_attempts=max_attempts),
        )
    )


def _runner(task: Task) -> Any:
    path = task.module_path

    def run(*args: Any, **kwargs: Any) -> Any:
        return run_task(path, args, kwargs)

    signature = inspect.signature(task.func)
    if task.takes_context:
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = task.func.__qualname__
    run.__module__ = task.func.__module__
    return functools.update_wrapper(run, task.func, assigned=("__doc__",), updated=())
