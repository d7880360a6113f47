"""Huey (``SqliteHuey``) on the SQLite workloads: single enqueue, and processing of
pre-enqueued no-op tasks by ``huey_consumer`` with thread workers.

Huey's consumer never exits by itself, so the harness polls Huey's result table and stops
the consumer once every task has recorded its result; the figure is the time from starting
the consumer to the poll that saw the last result (its shutdown is not counted, unlike
jobqueue's ``--burst`` exit, which is).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from importlib.metadata import version
from pathlib import Path

from benchmarks.huey_app import FILE_ENV, SYNCHRONOUS_ENV, make_huey
from benchmarks.procs import BenchmarkError, clean_environment, run_until_done, tool

SYSTEM = f"Huey {version('huey')}"
WARMUP_CALLS = 20


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def enqueue_single(workdir: Path, count: int, synchronous: str = "FULL") -> float:
    """Tasks/s of calling a Huey task (which enqueues it), one transaction per call."""
    path = workdir / f"huey_{uuid.uuid4().hex[:8]}.db"
    try:
        instance, noop = make_huey(str(path), synchronous)
        for _ in range(WARMUP_CALLS):
            noop()
        started = time.perf_counter()
        for _ in range(count):
            noop()
        elapsed = time.perf_counter() - started
        if instance.pending_count() != count + WARMUP_CALLS:
            raise BenchmarkError(f"Huey holds {instance.pending_count()} tasks, not {count}")
        instance.storage.close()
    finally:
        _remove(path)
    return count / elapsed


def make_template(workdir: Path, count: int) -> Path:
    """A Huey database holding ``count`` pending no-op tasks, copied for each processing run
    (enqueueing them one transaction at a time at FULL would take longer than the runs)."""
    path = workdir / f"huey_template_{uuid.uuid4().hex[:8]}.db"
    instance, noop = make_huey(str(path), "NORMAL")
    for _ in range(count):
        noop()
    if instance.pending_count() != count:
        raise BenchmarkError("the Huey template is incomplete")
    instance.storage.close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def remove_template(path: Path) -> None:
    _remove(path)


def processing(
    template: Path, jobs: int, *, workers: int, synchronous: str, timeout: float
) -> float:
    """Tasks/s of ``huey_consumer -w WORKERS -k thread`` draining a copy of ``template``."""
    path = template.with_name(f"huey_run_{uuid.uuid4().hex[:8]}.db")
    shutil.copyfile(template, path)
    try:
        poll = sqlite3.connect(path, isolation_level=None)
        try:

            def done() -> int:
                return int(poll.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

            argv = [tool("huey_consumer"), "benchmarks.huey_app.huey", "-w", str(workers)]
            argv += ["-k", "thread"]
            env = clean_environment({FILE_ENV: str(path), SYNCHRONOUS_ENV: synchronous})
            elapsed = run_until_done(argv, env, done=done, total=jobs, timeout=timeout)
            left = int(poll.execute("SELECT COUNT(*) FROM task").fetchone()[0])
            if left:
                raise BenchmarkError(f"{left} Huey tasks were still queued at the end")
        finally:
            poll.close()
    finally:
        _remove(path)
    return jobs / elapsed
