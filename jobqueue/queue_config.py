"""Per-queue settings: ``[tool.jobqueue.queues.NAME]`` in pyproject.toml, or
``JobQueue(queues={"NAME": {...}})`` in code (which replaces the file's table).

``max_pending = N`` bounds the jobs waiting in the queue (pending, whether due or scheduled,
blocked or waiting for dependencies): an enqueue that would exceed it raises
:class:`~jobqueue.errors.QueueFullError`, or waits for room with ``using(block=...)``.
``rate_limit = "100/m"`` (or ``rate_limits = [...]``) limits the starts of the queue's jobs
that have no rate limit of their own, under the key ``queue:NAME``.
Settings are checked when they are read, so a typo fails at start-up, not at the first enqueue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobqueue.config import find_project_settings
from jobqueue.errors import ConfigurationError
from jobqueue.options import validate_queue_name
from jobqueue.rate_limits import rate_windows

#: The settings a queue's table may hold.
QUEUE_KEYS = ("max_pending", "rate_limit", "rate_limits")


@dataclass(frozen=True)
class QueueConfig:
    """One queue's settings (``None``: unbounded)."""

    max_pending: int | None = None
    #: The queue's rate limits as stored (``"count/seconds,..."``), or None.
    rate_windows: str | None = None


def queue_configs(
    given: Mapping[str, Mapping[str, Any]] | None = None, *, start: Path | None = None
) -> dict[str, QueueConfig]:
    """The queues' settings: ``given`` if not None, else ``[tool.jobqueue.queues]`` of the
    nearest pyproject.toml. Raises ConfigurationError naming what is wrong."""
    where = "JobQueue(queues=...)"
    if given is None:
        project = find_project_settings(start)
        given = project.values.get("queues", {})
        where = f"[tool.jobqueue.queues] in {project.path}"
    if not isinstance(given, Mapping):
        raise ConfigurationError(f"{where} must map queue names to tables of settings")
    return {_queue(name, where): _config(name, table, where) for name, table in given.items()}


def _queue(name: object, where: str) -> str:
    try:
        return validate_queue_name(name)
    except ValueError as error:
        raise ConfigurationError(f"{where}: {error}") from None


def _config(name: str, table: object, where: str) -> QueueConfig:
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where}: queue {name!r} must be a table of settings")
    unknown = sorted(set(table) - set(QUEUE_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown setting(s) {', '.join(unknown)} for queue {name!r}; "
            f"known: {', '.join(QUEUE_KEYS)}"
        )
    bound = table.get("max_pending")
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 1):
        raise ConfigurationError(
            f"{where}: max_pending of queue {name!r} must be an integer >= 1, not {bound!r}"
        )
    try:
        windows = rate_windows(table.get("rate_limit"), table.get("rate_limits"), None, None)
    except ValueError as error:
        raise ConfigurationError(f"{where}: queue {name!r}: {error}") from None
    return QueueConfig(max_pending=bound, rate_windows=windows)
