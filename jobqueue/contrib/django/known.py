"""The Django tasks this process knows, by module path: filled as each task is declared (its
backend validates it), read by the worker's runner and by ``get_result``."""

from __future__ import annotations

import threading

from django.tasks import Task

_tasks: dict[str, Task] = {}
_lock = threading.Lock()


def remember(task: Task) -> bool:
    """Keep ``task``; False if a task of that module path was already known."""
    with _lock:
        if task.module_path in _tasks:
            return False
        _tasks[task.module_path] = task
        return True


def find_task(path: str) -> Task | None:
    """The task declared under ``path`` in this process, if any."""
    return _tasks.get(path)
