"""Durable steps against real ``jobrunner work`` processes, on every backend: an iteration of
10,000 items survives three SIGKILLs, re-handling at most ``every`` items per kill; a
transactional step's rows exist exactly once whether its worker dies just before or just after
the step's commit; and a durable sleep gives its thread to other jobs and resumes on time
without running its finished steps again."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from jobqueue import JobQueue
from jobqueue.schema import PENDING, SUCCEEDED, job_steps

import ledger_jobs
from backends import scale_factor
from workers import status, summary, wait_until

EVERY = 200


def read_notes(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def last_item(path: Path) -> int:
    """The item handled last (-1 before the first): items run in order within an attempt."""
    lines = read_notes(path)
    return int(lines[-1][1]) if lines else -1


def test_an_iteration_of_10000_items_killed_three_times_redoes_at_most_every_per_kill(
    jq: JobQueue, work, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    count = max(1_000, int(10_000 * scale_factor()))
    notes = tmp_path / "items"
    handle = ledger_jobs.walk.using(jobqueue=jq).enqueue(str(notes), count, EVERY, 0.0005)
    runner = work("--threads", "1", "--burst")
    # Three kills, each at its own distance past a cursor save (saves come every EVERY items).
    for share, past_a_save in ((0.2, 40), (0.5, 100), (0.8, 160)):
        point = int(share * count) // EVERY * EVERY + past_a_save
        wait_until(lambda: last_item(notes) >= point, 60, f"item {point} to be handled")  # noqa: B023
        os.kill(int(read_notes(notes)[-1][2]), signal.SIGKILL)  # the worker handling the items
    assert runner.wait(120) == 0, summary(jq) + runner.output()[-3000:]
    row = jq.get_job(handle.id)
    assert row is not None and (row.status, row.attempts) == (SUCCEEDED, 4), summary(jq)

    handled: dict[int, list[int]] = defaultdict(list)  # attempt -> items, in order
    pids: dict[int, set[str]] = defaultdict(set)
    for attempt, item, pid in read_notes(notes):
        handled[int(attempt)].append(int(item))
        pids[int(attempt)].add(pid)
    assert sorted(handled) == [1, 2, 3, 4]
    assert all(len(pids[a]) == 1 for a in handled) and len(set().union(*pids.values())) == 4
    every_item = Counter(item for items in handled.values() for item in items)
    assert set(every_item) == set(range(count))  # every item handled at least once
    redone = []
    for attempt in (1, 2, 3):
        items, following = handled[attempt], handled[attempt + 1]
        assert items == list(range(items[0], items[-1] + 1))  # in order, none skipped
        # The next attempt resumes after the last saved cursor: no gap, never from the top.
        assert items[0] < following[0] <= items[-1] + 1, (attempt, items[-1], following[0])
        redone.append(items[-1] + 1 - following[0])
    assert handled[4] == list(range(handled[4][0], count))
    assert all(0 <= n <= EVERY for n in redone), redone
    assert sum(every_item.values()) - count == sum(redone) <= 3 * EVERY
    with jq.transaction(read_only=True) as connection:
        record = connection.execute(job_steps.select()).mappings().one()
    assert (record["name"], record["done"], record["value"]) == ("items", True, str(count - 1))


@pytest.fixture
def orders(jq: JobQueue):  # type: ignore[no-untyped-def]
    """The app's own table, in the jobqueue database, that the transactional step writes."""
    with jq.transaction() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {ledger_jobs.ORDERS}"))
        connection.execute(
            text(
                f"CREATE TABLE {ledger_jobs.ORDERS} "
                "(order_id INTEGER NOT NULL, attempt INTEGER NOT NULL)"
            )
        )

    def rows() -> list[tuple[int, int]]:
        with jq.transaction(read_only=True) as connection:
            result = connection.execute(text(f"SELECT order_id, attempt FROM {ledger_jobs.ORDERS}"))
            return [(int(order_id), int(attempt)) for order_id, attempt in result]

    yield rows
    with jq.transaction() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {ledger_jobs.ORDERS}"))


@pytest.mark.parametrize(
    ("moment", "kept_attempt", "executions"),
    [
        # Dead before COMMIT: the insert rolls back with the record, and attempt 2 runs it again.
        ("before-commit", 2, ["insert 1", "insert 2", "after 2"]),
        # Dead right after COMMIT: both stand, and attempt 2 gets the record, not a second run.
        ("after-commit", 1, ["insert 1", "after 2"]),
    ],
)
def test_a_transactional_step_killed_at_its_commit_writes_its_rows_once(
    jq: JobQueue, orders, work, tmp_path: Path, monkeypatch, moment, kept_attempt, executions
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("JQ_TEST_DIE_FLAG", str(tmp_path / "died"))
    monkeypatch.setenv("JQ_TEST_DIE_STEP", "insert-order")
    monkeypatch.setenv("JQ_TEST_DIE_MOMENT", moment)
    notes = tmp_path / "executions"
    handle = ledger_jobs.place_order.using(jobqueue=jq).enqueue(str(notes), 42)
    runner = work("--app", "die_at_step_commit", "--burst")
    assert runner.wait(60) == 0, summary(jq) + runner.output()[-3000:]
    assert (tmp_path / "died").exists()
    assert runner.events("worker_exited")[0]["exit_code"] == 9
    assert handle.result(timeout=10) == 42
    row = jq.get_job(handle.id)
    assert row is not None and (row.status, row.attempts) == (SUCCEEDED, 2)
    assert orders() == [(42, kept_attempt)]  # exactly one row, whichever attempt wrote it
    assert [" ".join(line) for line in read_notes(notes)] == executions


def test_a_durable_sleep_frees_the_only_thread_and_resumes_on_time(
    jq: JobQueue, ledger, work
) -> None:  # type: ignore[no-untyped-def]
    sleeper = ledger_jobs.durable_nap.using(jobqueue=jq).enqueue(2.0)
    runner = work("--threads", "1")
    wait_until(lambda: sleeping(jq, sleeper.id), 30, "the job to go to sleep")
    others = [ledger_jobs.sleep.using(jobqueue=jq).enqueue(0.2) for _ in range(4)]
    wait_until(lambda: status(jq, sleeper.id) == SUCCEEDED, 30, "the sleeper to wake and finish")
    assert all(status(jq, other.id) == SUCCEEDED for other in others)
    assert sleeper.result(timeout=10) == "rested"
    runner.stop()

    with jq.transaction(read_only=True) as connection:
        recorded = connection.execute(
            text("SELECT value FROM job_steps WHERE job_id = :id AND name = 'nap'"),
            {"id": sleeper.id},
        ).scalar_one()
        entries = connection.execute(text("SELECT job_id, tag, at FROM test_ledger")).all()
    wake_at = datetime.fromisoformat(json.loads(recorded))
    at = {(job_id, tag): datetime.fromisoformat(when) for job_id, tag, when in entries}
    assert Counter(tag for job_id, tag, _ in entries if job_id == sleeper.id) == {
        "before": 1,  # the step before the sleep ran once, not again on waking
        "after": 1,
    }
    before, after = at[sleeper.id, "before"], at[sleeper.id, "after"]
    ran = [at[other.id, "sleep"] for other in others]
    # One thread: the others ran while the sleeper slept, and were done before it woke.
    assert all(before < started < wake_at - timedelta(seconds=0.2) for started in ran)
    # It woke no earlier than its time, and within a poll interval or so of it.
    assert wake_at <= after <= wake_at + timedelta(seconds=1), (wake_at, after)
    row = jq.get_job(sleeper.id)
    assert row is not None and row.failed_attempts == 0


def sleeping(jq: JobQueue, job_id: str) -> bool:
    row = jq.get_job(job_id)
    return row is not None and row.status == PENDING and row.scheduled_for > datetime.now(UTC)
