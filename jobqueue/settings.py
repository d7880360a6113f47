"""Worker and supervisor settings, with their defaults and environment overrides.

Defaults: heartbeat every 5 s, a process is dead after 30 s without one (≥ 5x the interval),
idle polling backs off from 10 ms to 1 s (PostgreSQL also wakes on NOTIFY), running jobs get
10 s to finish on SIGTERM, and a thread stuck 10 s past its job's timeout recycles the process.
Tests shorten them through ``JOBQUEUE_HEARTBEAT_INTERVAL`` / ``JOBQUEUE_DEAD_THRESHOLD`` etc.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_THREADS = 5
DEFAULT_HEARTBEAT_INTERVAL = 5.0
DEFAULT_DEAD_THRESHOLD = 30.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_TIMEOUT_GRACE = 10.0
MIN_POLL_INTERVAL = 0.01
DEFAULT_SQLITE_BUSY_TIMEOUT = 10.0


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None


@dataclass
class WorkerSettings:
    """Everything a worker process needs; passed to the child as JSON."""

    database_url: str
    #: PostgreSQL: where the worker LISTENs for enqueues (None: the database URL); a direct
    #: connection to the server when the database URL goes through PgBouncer.
    listen_url: str | None = None
    apps: list[str] = field(default_factory=list)
    queues: list[str] | None = None  # None: every queue
    threads: int = DEFAULT_THREADS
    prefetch: int | None = None  # claimed beyond the threads; None: automatic (see Worker)
    burst: bool = False
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    dead_threshold: float = DEFAULT_DEAD_THRESHOLD
    poll_interval: float = DEFAULT_POLL_INTERVAL
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    timeout_grace: float = DEFAULT_TIMEOUT_GRACE
    max_jobs: int | None = None
    max_memory_mb: float | None = None
    sqlite_synchronous: str = "NORMAL"
    #: How long a SQLite write waits for another writer's lock before the attempt fails and
    #: the worker backs off (seconds).
    sqlite_busy_timeout: float = DEFAULT_SQLITE_BUSY_TIMEOUT
    log_level: str | None = None
    process_id: str | None = None
    supervisor_id: str | None = None

    def validate(self) -> WorkerSettings:
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if self.prefetch is not None and self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, not {self.prefetch}")
        if self.heartbeat_interval <= 0 or self.poll_interval <= 0:
            raise ValueError("heartbeat and poll intervals must be positive")
        if self.dead_threshold < 5 * self.heartbeat_interval:
            raise ValueError(
                f"the dead threshold ({self.dead_threshold:g} s) must be at least 5x the "
                f"heartbeat interval ({self.heartbeat_interval:g} s), or live workers get rescued"
            )
        if self.sqlite_busy_timeout <= 0:
            raise ValueError("the SQLite busy timeout must be positive")
        if self.shutdown_timeout < 0:
            raise ValueError("shutdown timeout must be >= 0")
        if self.queues is not None and (not self.queues or "*" in self.queues):
            self.queues = None
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSettings:
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()


def timing_from_environment() -> dict[str, float]:
    """Heartbeat/threshold/poll/shutdown settings from the environment, else the defaults."""
    return {
        "heartbeat_interval": _env_float("JOBQUEUE_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_INTERVAL),
        "dead_threshold": _env_float("JOBQUEUE_DEAD_THRESHOLD", DEFAULT_DEAD_THRESHOLD),
        "poll_interval": _env_float("JOBQUEUE_POLL_INTERVAL", DEFAULT_POLL_INTERVAL),
        "shutdown_timeout": _env_float("JOBQUEUE_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT),
        "timeout_grace": _env_float("JOBQUEUE_TIMEOUT_GRACE", DEFAULT_TIMEOUT_GRACE),
        "sqlite_busy_timeout": _env_float(
            "JOBQUEUE_SQLITE_BUSY_TIMEOUT", DEFAULT_SQLITE_BUSY_TIMEOUT
        ),
    }
