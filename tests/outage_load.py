"""What the fault tests share: a thread that enqueues steadily through an outage and keeps what
each call answered, and the checks that every accepted job ran to success, at least once, and
exactly once where nothing interrupted it (counted in the ledger, not inferred)."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import text

from jobqueue import DatabaseUnavailableError, JobQueue
from jobqueue.schema import RUNNING, SUCCEEDED
from jobqueue.serialization import decode_arguments

import ledger_jobs
from workers import LEDGER, Work, summary, wait_until


def create_ledger(jq: JobQueue) -> None:
    """The ledger table the test jobs write one row per attempt into (as the ledger fixture)."""
    with jq.transaction() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {LEDGER} (job_id VARCHAR(26) NOT NULL, attempt INTEGER "
                "NOT NULL, tag VARCHAR(50), pid INTEGER, at VARCHAR(40))"
            )
        )


def ledger_rows(jq: JobQueue) -> list[tuple[str, int, str]]:
    with jq.transaction(read_only=True) as connection:
        result = connection.execute(text(f"SELECT job_id, attempt, tag FROM {LEDGER}"))
        return [(str(r[0]), int(r[1]), str(r[2] or "")) for r in result]


class EnqueueLoad:
    """Enqueues ``ledger.record(tag)`` every ``interval`` seconds on a thread of its own, and
    sorts each call's answer: accepted (the job's id), refused with DatabaseUnavailableError
    (the message), or anything else (unexpected, a failure of the test)."""

    def __init__(self, jq: JobQueue, prefix: str, interval: float = 0.02) -> None:
        self._jq = jq
        self._prefix = prefix
        self._interval = interval
        self.accepted: dict[str, str] = {}  # tag -> job id
        self.refused: dict[str, str] = {}  # tag -> error message
        self.unexpected: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="enqueue-load")

    def __enter__(self) -> EnqueueLoad:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "an enqueue hung for a minute"

    def _run(self) -> None:
        number = 0
        while not self._stop.wait(self._interval):
            number += 1
            tag = f"{self._prefix}-{number}"
            try:
                handle = ledger_jobs.record.using(jobqueue=self._jq).enqueue(tag)
            except DatabaseUnavailableError as error:
                self.refused[tag] = str(error)
            except BaseException as error:
                self.unexpected.append(error)
            else:
                self.accepted[tag] = handle.id

    def unknown(self) -> set[str]:
        """Refusals whose message says whether the job was written is unknown (a lost COMMIT)."""
        return {tag for tag, message in self.refused.items() if "unknown" in message}


def record_tags(jq: JobQueue) -> dict[str, str]:
    """tag -> job id of every ``ledger.record`` job in the table."""
    with jq.transaction(read_only=True) as connection:
        rows = connection.execute(
            text("SELECT id, args FROM job_queue WHERE name = 'ledger.record'")
        ).all()
    return {str(decode_arguments(args)[0][0]): str(job_id) for job_id, args in rows}


def assert_enqueues_kept_their_word(jq: JobQueue, load: EnqueueLoad) -> None:
    """An accepted enqueue's job is in the table; a refused one's is not, unless its error said
    that whether it was written is unknown; and nothing but DatabaseUnavailableError escaped."""
    assert load.unexpected == [], (
        f"enqueue raised something other than a clear error: {load.unexpected!r}"
    )
    written = record_tags(jq)
    lost = {tag for tag, job_id in load.accepted.items() if written.get(tag) != job_id}
    assert not lost, f"accepted enqueues whose job is not in the table: {sorted(lost)[:10]}"
    phantom = (set(load.refused) - load.unknown()) & set(written)
    assert not phantom, "refused enqueues whose job was written anyway: " + repr(
        {tag: load.refused[tag] for tag in sorted(phantom)[:10]}
    )


def assert_every_job_ran(jq: JobQueue) -> None:
    """Every job succeeded, none is running; each ran at least once, never the same attempt
    twice, at most ``failed_attempts + 1`` times, and exactly once if no attempt failed."""
    wait_until(
        lambda: jq.count_jobs(status=SUCCEEDED) == jq.count_jobs(), 120, "every job to succeed"
    )
    assert jq.count_jobs(status=RUNNING) == 0, summary(jq)
    rows = ledger_rows(jq)
    attempts = Counter((job_id, attempt) for job_id, attempt, _ in rows)
    assert max(attempts.values(), default=1) == 1, "an attempt ran twice"
    runs = Counter(job_id for job_id, _, _ in rows)
    with jq.transaction(read_only=True) as connection:
        jobs = connection.execute(text("SELECT id, failed_attempts FROM job_queue")).all()
    never = [job_id for job_id, _ in jobs if runs[job_id] == 0]
    assert not never, f"{len(never)} succeeded jobs never ran: {never[:5]}"
    too_often = [(i, runs[i], failed) for i, failed in jobs if runs[i] > failed + 1]
    assert not too_often, (
        f"jobs that ran more often than their failed attempts allow: {too_often[:5]}"
    )
    assert len(jobs) > 0


def assert_workers_stayed_up(runner: Work, workers: int) -> None:
    """No worker died and was restarted, and nobody was declared dead; then a clean stop."""
    assert len(runner.events("worker_started")) == workers, "a worker died instead of waiting"
    assert not runner.events("worker_exited"), runner.events("worker_exited")
    for event in ("process_declared_dead", "process_found_declared_dead", "process_crashed"):
        assert not runner.events(event), f"{event}: {runner.events(event)}"
    runner.signal_group(signal.SIGTERM)
    assert runner.wait(30) == 0, runner.output()[-3000:]


def wait_for_workers(runner: Work, count: int, progress: Callable[[], int]) -> None:
    """``count`` workers have started and jobs are being run."""

    def started() -> int:
        return sum(1 for e in runner.events("process_started") if e.get("kind") == "worker")

    wait_until(lambda: started() == count, 60, f"{count} workers to start")
    wait_until(lambda: progress() >= 20, 60, "jobs to be running")
