"""SQLite on a disk that fills up while jobs are enqueued and run: a small tmpfs, and a small ext4
file system in a loop-mounted file, holding only the database, filled with a filler file.

An enqueue on the full disk fails with a clear DatabaseUnavailableError that says the disk is
full and writes nothing; nothing written before is lost or corrupted; workers back off instead of
dying, and when the filler is deleted they finish every job.
"""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from jobqueue import DatabaseUnavailableError, JobQueue, migrations
from jobqueue.db import create_engine
from jobqueue.schema import SUCCEEDED

import ledger_jobs
from backends import required_backends, scale_factor
from outage_load import (
    assert_every_job_ran,
    assert_workers_stayed_up,
    create_ledger,
    ledger_rows,
    wait_for_workers,
)
from workers import FAST, Work, wait_until

pytestmark = pytest.mark.chaos

# Not smaller: once space returns, the WAL can grow by ~10 MB within a second while the workers
# catch up, before any checkpoint completes; on a 16 MB disk it sometimes filled the disk again,
# and a WAL that fills the disk cannot be checkpointed (the checkpoint must grow the file).
DISK_MB = 64
DEAD_THRESHOLD = float(FAST["JOBQUEUE_DEAD_THRESHOLD"])


def _commands(kind: str, directory: Path, image: Path) -> list[list[str]]:
    if kind == "tmpfs":
        return [["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(directory)]]
    return [
        ["truncate", "-s", f"{DISK_MB}M", str(image)],
        ["mkfs.ext4", "-q", "-F", str(image)],
        ["mount", "-o", "loop", str(image), str(directory)],
    ]


@pytest.fixture(params=["tmpfs", "ext4-on-loop"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A DISK_MB file system (tmpfs, or ext4 in a loop-mounted file) mounted for this test
    alone, unmounted afterwards."""
    directory = tmp_path / "disk"
    directory.mkdir()
    for argv in _commands(request.param, directory, tmp_path / "disk.img"):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            problem = done.stderr.strip() if done.returncode else ""
        except OSError as error:  # the command itself is missing
            problem = str(error)
        if problem:
            reason = f"cannot mount a small {request.param} file system to fill: {problem}"
            if "sqlite" in required_backends():
                pytest.fail(f"{reason} (required by JOBQUEUE_REQUIRE_BACKENDS)", pytrace=False)
            pytest.skip(reason)
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """Write a filler file until the file system has no byte left."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    file.write(b"\0" * size)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    return filler


def integrity(jq: JobQueue) -> str:
    with jq.transaction(read_only=True) as connection:
        return str(connection.execute(text("PRAGMA integrity_check")).scalar_one())


def test_sqlite_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{small_disk / 'jobs.db'}"
    engine = create_engine(url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()
    with JobQueue(url) as jq:
        create_ledger(jq)
        count = max(300, int(1000 * scale_factor()))
        before = {
            h.id for h in jq.enqueue_many([ledger_jobs.sleep.call(0.005) for _ in range(count)])
        }
        runner = Work(url, tmp_path / "work.log", "--processes", "2", "--threads", "2")
        try:
            wait_for_workers(runner, 2, lambda: len(ledger_rows(jq)))
            filler = fill(small_disk)
            full_at = time.monotonic()
            # Writes may still fit in pages the WAL already holds; soon one needs a new page.
            accepted: dict[str, str] = {}
            refused: dict[str, str] = {}
            number = 0
            deadline = time.monotonic() + 30
            while not refused and time.monotonic() < deadline:
                number += 1
                tag = f"full-{number}"
                try:
                    accepted[tag] = ledger_jobs.record.using(jobqueue=jq).enqueue(tag).id
                except DatabaseUnavailableError as error:
                    refused[tag] = str(error)
            assert refused, f"{len(accepted)} enqueues on a full disk all succeeded"
            with pytest.raises(DatabaseUnavailableError) as batch:
                jq.enqueue_many([ledger_jobs.record.call("batch") for _ in range(50)])
            for message in [*refused.values(), str(batch.value)]:
                assert "disk is full" in message and "nothing was written" in message, message
            wait_until(
                lambda: runner.events("claim_failed") and runner.events("heartbeat_failed"),
                30,
                "the workers and the supervisor to notice the full disk",
            )
            assert integrity(jq) == "ok"
            # The disk stays full for longer than the dead threshold: every heartbeat is stale.
            time.sleep(max(0.0, full_at + 2 * DEAD_THRESHOLD - time.monotonic()))
            filler.unlink()
            wait_until(lambda: runner.events("database_contact_restored"), 30, "contact again")
            after = ledger_jobs.record.using(jobqueue=jq).enqueue("after").id
            assert_every_job_ran(jq)
            assert integrity(jq) == "ok"
            with jq.transaction(read_only=True) as connection:
                ids = set(connection.execute(text("SELECT id FROM job_queue")).scalars())
            assert ids == before | set(accepted.values()) | {after}, "a job was lost or added"
            assert jq.count_jobs(status=SUCCEEDED) == len(ids)
            assert_workers_stayed_up(runner, workers=2)
        finally:
            runner.stop()
