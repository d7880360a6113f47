"""Huey's side of the benchmark: a ``SqliteHuey`` and its no-op task.

The consumer imports :data:`huey` (``huey_consumer benchmarks.huey_app.huey``), configured by
the environment; the harness calls :func:`make_huey` for its own producer. The task returns a
value so that Huey's result store (its ``kv`` table) records each completion: that is how a
Huey user learns that a task finished, and how the harness counts finished tasks.

Huey sets no ``synchronous`` pragma unless asked (``fsync=True`` means FULL, ``False`` OFF), so
its default is SQLite's own, FULL. :class:`NormalSqliteStorage` adds a NORMAL variant to
compare with jobqueue's default at equal durability.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from huey import SqliteHuey  # type: ignore[import-untyped]
from huey.storage import SqliteStorage  # type: ignore[import-untyped]

FILE_ENV = "JQ_BENCH_HUEY_FILE"
SYNCHRONOUS_ENV = "JQ_BENCH_HUEY_SYNCHRONOUS"
NAME = "bench"


class NormalSqliteStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SQLite storage with ``PRAGMA synchronous = NORMAL`` on every connection."""

    def _create_connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = super()._create_connection()
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection


def make_huey(filename: str, synchronous: str = "FULL") -> tuple[SqliteHuey, Any]:
    """A SqliteHuey on ``filename`` at its default settings (``synchronous`` FULL) or at
    NORMAL, and its registered no-op task."""
    options: dict[str, Any] = {"filename": filename}
    if synchronous == "NORMAL":
        options["storage_class"] = NormalSqliteStorage
    elif synchronous != "FULL":
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    instance = SqliteHuey(NAME, **options)

    @instance.task(name="noop")  # type: ignore[untyped-decorator]
    def noop() -> bool:
        return True

    return instance, noop


_from_environment: tuple[SqliteHuey, Any] | None = None


def __getattr__(name: str) -> Any:
    """``huey`` and ``noop`` for the consumer, built from the environment on first access
    (not at import: the harness imports this module for :func:`make_huey` alone, and a
    SqliteHuey creates its file as soon as it exists)."""
    global _from_environment
    if name not in ("huey", "noop"):
        raise AttributeError(name)
    if _from_environment is None:
        _from_environment = make_huey(os.environ[FILE_ENV], os.environ.get(SYNCHRONOUS_ENV, "FULL"))
    return _from_environment[0] if name == "huey" else _from_environment[1]
