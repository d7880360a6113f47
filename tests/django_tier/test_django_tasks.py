"""Django's tasks API on jobqueue, through Django's public API only: every feature flag, results
read back from another process's work, failures with their tracebacks, transactions, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SITE
from django.db import transaction
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.test import Client
from django.utils import timezone
from shop.models import Order
from shop.tasks import (
    add,
    always_fails,
    async_double,
    confirm_order,
    die_once,
    hold_first_time,
    which_attempt,
)
from ulid import ULID

Work = Callable[..., Any]


def test_the_backend_supports_every_feature() -> None:
    backend = task_backends["default"]
    assert (
        backend.supports_defer,
        backend.supports_async_task,
        backend.supports_get_result,
        backend.supports_priority,
    ) == (True, True, True, True)


def test_a_task_runs_in_a_worker_and_its_result_is_read_back(work: Work) -> None:
    result = add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    assert str(ULID.from_str(result.id)) == result.id  # the job's ULID
    fetched = add.get_result(result.id)
    assert (fetched.status, fetched.args, fetched.attempts) == (TaskResultStatus.READY, [2, 3], 0)
    work()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5
    assert result.attempts == 1 and len(result.worker_ids[0]) == 26
    assert result.enqueued_at <= result.started_at <= result.finished_at  # type: ignore[operator]
    assert result.errors == []


def test_async_tasks_and_the_async_api(work: Work) -> None:
    result = asyncio.run(async_double.aenqueue(21))
    work()
    fetched = asyncio.run(async_double.aget_result(result.id))
    assert (fetched.status, fetched.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    asyncio.run(result.arefresh())
    assert result.return_value == 42


def work_until_finished(work: Work, result: Any) -> None:
    """Burst workers until the task has finished (a retry waits for its backoff)."""
    deadline = time.monotonic() + 120
    while True:
        work()
        result.refresh()
        if result.is_finished:
            return
        assert time.monotonic() < deadline, f"{result.id} is still {result.status}"
        time.sleep(0.2)  # the retry's backoff, not a stand-in for a condition


def test_failures_are_retried_then_failed_with_each_traceback(work: Work) -> None:
    result = always_fails.enqueue()
    work_until_finished(work, result)
    assert result.status == TaskResultStatus.FAILED  # MAX_ATTEMPTS = 2: both used
    assert [e.exception_class_path for e in result.errors] == ["builtins.LookupError"] * 2
    assert all("nothing here" in e.traceback and "Traceback" in e.traceback for e in result.errors)
    assert result.errors[0].exception_class is LookupError
    assert result.attempts == 2
    with pytest.raises(ValueError, match="failed"):
        _ = result.return_value


def test_a_task_with_context_sees_its_attempt(work: Work) -> None:
    result = which_attempt.enqueue(fail_first=True)
    work_until_finished(work, result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"attempt": 2, "id": result.id}
    assert [e.exception_class_path for e in result.errors] == ["builtins.RuntimeError"]


def test_priority_orders_the_work_and_run_after_defers_it(work: Work) -> None:
    later = add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    low = add.using(priority=-50).enqueue(1, 2)
    high = add.using(priority=50).enqueue(1, 3)
    work("--threads", "1", "--prefetch", "0")  # one claim at a time, in priority order
    finished = {r.id: add.get_result(r.id) for r in (later, low, high)}
    assert finished[later.id].status == TaskResultStatus.READY  # not due yet
    assert finished[high.id].started_at < finished[low.id].started_at  # type: ignore[operator]
    assert finished[high.id].task.priority == 50


def test_an_enqueue_commits_and_rolls_back_with_the_atomic_block(work: Work) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(reference="rolled-back")
        gone = confirm_order.enqueue("rolled-back")
        raise RuntimeError("roll back")
    with pytest.raises(TaskResultDoesNotExist):
        confirm_order.get_result(gone.id)
    with transaction.atomic():
        Order.objects.create(reference="kept")
        kept = confirm_order.enqueue("kept")
    work()
    assert confirm_order.get_result(kept.id).status == TaskResultStatus.SUCCESSFUL
    assert Order.objects.get(reference="kept").confirmations == 1  # exactly one run
    assert not Order.objects.filter(reference="rolled-back").exists()


def test_the_example_view_enqueues_in_its_transaction(work: Work) -> None:
    client = Client(raise_request_exception=False)
    assert client.post("/orders/", {"reference": "A-1"}).status_code == 201
    assert client.post("/orders/", {"reference": "A-2", "fail": "1"}).status_code == 500
    work()
    assert list(Order.objects.values_list("reference", "confirmed", "confirmations")) == [
        ("A-1", True, 1)
    ]


def test_task_enqueued_is_sent_with_the_stored_result() -> None:
    seen: list[str] = []

    def receiver(sender: type, task_result: Any, **kwargs: Any) -> None:
        seen.append(task_result.id)
        raise RuntimeError("a task_enqueued receiver that raises")

    task_enqueued.connect(receiver)
    try:
        result = add.enqueue(3, 4)  # a receiver that raises does not undo the enqueue
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [result.id]
    assert add.get_result(result.id).status == TaskResultStatus.READY


def test_raising_signal_receivers_leave_the_task_successful(work: Work) -> None:
    """shop.tasks connects a task_started and a task_finished receiver that raise for "add":
    each is logged, the task runs once and stays SUCCESSFUL."""
    result = add.enqueue(1, 1)
    done = work()
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        2,
        1,
    )
    output = done.stdout + done.stderr
    assert output.count("django_task_signal_receiver_failed") == 2
    assert "a task_started receiver that raises" in output
    assert "a task_finished receiver that raises" in output


def test_a_worker_killed_mid_task_is_recovered_and_the_task_succeeds(
    work: Work, tmp_path: Path
) -> None:
    result = die_once.enqueue(str(tmp_path / "died"))
    work("--dead-threshold", "5", "--heartbeat-interval", "1", timeout=180)
    result.refresh()
    assert (tmp_path / "died").exists()  # it did die once
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, "survived")


def test_a_worker_pool_sigkilled_from_outside_mid_task_is_recovered(
    work: Work, tmp_path: Path
) -> None:
    """``manage.py jobrunner work --processes 2`` killed whole (supervisor and children, as
    the OOM killer or ``kill -9`` of a container would) while the task runs: the task is
    RUNNING under a dead worker, and the next worker rescues it and it ends SUCCESSFUL."""
    marker = tmp_path / "holding"
    result = hold_first_time.enqueue(str(marker))
    pool = subprocess.Popen(
        [sys.executable, "manage.py", "jobrunner", "work", "--processes", "2",
         "--heartbeat-interval", "1"],
        cwd=SITE,
        env={**os.environ, "PYTHONPATH": str(SITE)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    queue = task_backends["default"].jobqueue
    try:
        # Killed once the attempt's start is on record (the worker writes it with its next
        # claim), so the kill costs the task an attempt, deterministically.
        deadline = time.monotonic() + 120
        while not marker.exists() or queue.get_job(result.id).started_attempt != 1:  # type: ignore[union-attr]
            assert pool.poll() is None, "the worker pool exited before running the task"
            assert time.monotonic() < deadline, "the task's start was never recorded"
            time.sleep(0.05)
    finally:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait(timeout=30)
    result.refresh()
    assert result.status == TaskResultStatus.RUNNING  # held by a worker that is gone
    work("--dead-threshold", "5", "--heartbeat-interval", "1", timeout=180)
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, "survived")
    # The killed attempt counts, with the dead worker's id and a WorkerLost error.
    assert result.attempts == 2 and result.worker_ids[0] != result.worker_ids[1]
    assert [error.exception_class_path for error in result.errors] == ["jobqueue.WorkerLost"]


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result("not-an-id")
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result(str(ULID()))
    with pytest.raises(InvalidTask, match="Queue"):
        add.using(queue_name="nowhere").enqueue(1, 2)
    with pytest.raises(InvalidTask, match=r"JSON|serializ"):
        add.enqueue(object(), 1)
    with pytest.raises(InvalidTask, match="argument"):
        add.enqueue(1, 2, 3)


def test_jobrunner_work_with_django_settings_runs_the_tasks() -> None:
    """``jobrunner work --django-settings`` (not manage.py): Django is set up in the worker,
    and the tasks backend's database is found from the settings."""
    result = add.enqueue(20, 22)
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue", "work", "--burst", "--django-settings",
         "site_config.settings"],
        cwd=SITE,
        env={**os.environ, "PYTHONPATH": str(SITE)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


def test_the_system_check_warns_while_the_schema_is_behind(tmp_path: Path) -> None:
    from django.core import checks
    from django.test import override_settings

    assert [m for m in checks.run_checks(databases=["default"]) if m.id == "jobqueue.W001"] == []
    empty = {
        "BACKEND": "jobqueue.contrib.django.JobQueueBackend",
        "OPTIONS": {"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"},
    }
    with override_settings(TASKS={"default": empty}):
        warnings = [m for m in checks.run_checks(databases=["default"]) if m.id == "jobqueue.W001"]
    assert len(warnings) == 1 and "jobrunner migrate" in (warnings[0].hint or "")


def test_without_a_database_option_jobqueues_own_resolution_applies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from django.test import override_settings

    url = f"sqlite:///{tmp_path / 'own.sqlite3'}"
    monkeypatch.setenv("JOBQUEUE_DATABASE_URL", url)
    plain = {"BACKEND": "jobqueue.contrib.django.JobQueueBackend"}
    with override_settings(TASKS={"default": plain}):
        assert task_backends["default"].url == url
    bad = override_settings(TASKS={"default": {**plain, "OPTIONS": {"MAX_ATTEMPTS": 0}}})
    with pytest.raises(InvalidTask, match="MAX_ATTEMPTS"), bad:
        task_backends["default"]  # building the backend checks its options
