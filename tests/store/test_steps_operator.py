"""Durable steps as an operator meets them, on every backend: ``jobrunner jobs show`` lists a
job's steps (``--json`` too), and ``jobs retry ID --from-step NAME`` forgets that step and every
later one in the retry's transaction, so the retried job runs those again and only those; a
name the job never recorded is refused with nothing changed."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from jobqueue import EnqueuedJob, JobQueue, iterate, job, step
from jobqueue.admin import NotFoundError, StepNotFoundError
from jobqueue.cli import main
from jobqueue.schema import CANCELLED, FAILED, PENDING, SUCCEEDED
from jobqueue.store.steps import step_names
from jobqueue.testing import drain

calls: Counter[str] = Counter()
broken: set[str] = set()  # where the jobs below raise while the name is in here


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    broken.clear()


def counted(name: str, value: Any) -> Any:
    calls[name] += 1
    return value


@job(name="steps_operator.four", max_attempts=1)
def four() -> list[Any]:
    """Four steps recorded in order, then a failure while ``end`` is broken."""
    first = step("fetch", counted, "fetch", [1, 2, 3])
    second = step("clean", counted, "clean", "x" * 1000)
    third = step("load", counted, "load", {"rows": 3})
    fourth = step("report", counted, "report", "é")  # two bytes in UTF-8
    if "end" in broken:
        raise RuntimeError("the mail server is down")
    return [first, len(second), third, fourth]


@job(name="steps_operator.walk", max_attempts=1)
def walk() -> int:
    """An iteration saved part-way, then a failure."""
    handled = 0
    for item in iterate(
        "items",
        lambda cursor: range(0 if cursor is None else cursor + 1, 6),
        key=lambda i: i,
        every=2,
    ):
        if item == 3 and "item-3" in broken:
            raise RuntimeError("bad item")
        handled += 1
    return handled


def failed_four(jq: JobQueue) -> EnqueuedJob:
    broken.add("end")
    handle = four.enqueue()
    assert drain(jq) == {FAILED: 1}
    broken.clear()
    calls.clear()
    return handle


def names(jq: JobQueue, job_id: str) -> list[str]:
    with jq.transaction(read_only=True) as connection:
        return step_names(connection, job_id)


def test_retry_from_a_step_runs_it_and_the_later_ones_again(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = failed_four(jq)
    job_id = handle.id
    assert names(jq, job_id) == ["fetch", "clean", "load", "report"]
    url = ["--database-url", jq.database_url]
    capsys.readouterr()  # drain's log lines
    assert main(["jobs", "retry", job_id, "--from-step", "load", *url]) == 0
    assert capsys.readouterr().out == "retried 1 job(s) from step 'load'\n"
    assert names(jq, job_id) == ["fetch", "clean"]
    assert jq.admin.get_job(job_id).status == PENDING
    assert drain(jq) == {SUCCEEDED: 1}
    assert calls == {"load": 1, "report": 1}  # fetch and clean came from their records
    assert handle.result() == [[1, 2, 3], 1000, {"rows": 3}, "é"]
    assert names(jq, job_id) == ["fetch", "clean", "load", "report"]


def test_retry_from_a_step_the_job_never_recorded_changes_nothing(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = failed_four(jq).id
    url = ["--database-url", jq.database_url]
    capsys.readouterr()
    assert main(["jobs", "retry", job_id, "--from-step", "lod", *url]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"jobrunner jobs: error: job {job_id} has no step 'lod'; "
        "its steps: 'fetch', 'clean', 'load', 'report'"
    )
    assert jq.admin.get_job(job_id).status == FAILED
    assert names(jq, job_id) == ["fetch", "clean", "load", "report"]
    # Several ids: one without the step refuses the whole retry, the other included.
    other = jq.enqueue_many([four.call()])[0].id
    with pytest.raises(StepNotFoundError, match=f"job {other} has no step 'load'; its steps: none"):
        jq.admin.retry([job_id, other], from_step="load")
    assert jq.admin.get_job(job_id).status == FAILED
    assert names(jq, job_id) == ["fetch", "clean", "load", "report"]
    assert main(["jobs", "retry", "--all-failed", "--from-step", "load", *url]) == 1
    assert "--from-step needs job ids" in capsys.readouterr().err
    assert jq.admin.get_job(job_id).status == FAILED


def test_retry_from_a_step_leaves_jobs_that_do_not_move_alone(jq: JobQueue) -> None:
    """Only failed or cancelled jobs move; a job that stays keeps its steps."""
    job_id = failed_four(jq).id
    jq.admin.retry([job_id])
    assert drain(jq) == {SUCCEEDED: 1}
    assert jq.admin.retry([job_id], from_step="fetch") == []
    assert names(jq, job_id) == ["fetch", "clean", "load", "report"]
    cancelled = failed_four(jq).id
    jq.admin.retry([cancelled])
    assert jq.admin.cancel([cancelled]).cancelled == [cancelled]
    assert jq.admin.get_job(cancelled).status == CANCELLED
    assert jq.admin.retry([cancelled], from_step="fetch") == [cancelled]
    assert names(jq, cancelled) == []
    assert drain(jq) == {SUCCEEDED: 1}
    assert calls == {"fetch": 1, "clean": 1, "load": 1, "report": 1}


def test_jobs_show_lists_the_steps_after_the_result(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    broken.add("item-3")
    handle = walk.enqueue()
    done = four.enqueue()
    assert drain(jq) == {FAILED: 1, SUCCEEDED: 1}
    url = ["--database-url", jq.database_url]
    capsys.readouterr()

    assert main(["jobs", "show", done.id, *url]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("steps:")
    assert lines[at - 1].startswith("result:")
    header, *rows = lines[at + 1 :]
    assert header.split() == ["NAME", "ATTEMPT", "RECORDED_AT", "STATE", "SIZE"]
    assert [row.split()[:2] + row.split()[3:] for row in rows] == [
        ["fetch", "1", "done", "7", "B"],  # [1,2,3]
        ["clean", "1", "done", "1002", "B"],
        ["load", "1", "done", "10", "B"],  # {"rows":3}
        ["report", "1", "done", "4", "B"],  # "é": two quotes and two bytes (3 characters)
    ]

    assert main(["jobs", "show", handle.id, "--json", *url]) == 0
    shown = json.loads(capsys.readouterr().out)
    (items,) = shown["steps"]
    assert {k: v for k, v in items.items() if k != "recorded_at"} == {
        "name": "items",
        "attempt": 1,
        "done": False,
        "size": 1,  # the cursor 1: saved after items 0 and 1
    }
    assert items["recorded_at"].endswith("Z")
    assert main(["jobs", "show", handle.id, *url]) == 0
    out = capsys.readouterr().out
    assert "in progress" in out and "last_error:" in out.split("steps:")[1]


def test_jobs_show_prints_no_steps_for_a_job_without_them(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = jq.enqueue_many([four.call()])[0]
    capsys.readouterr()
    assert main(["jobs", "show", handle.id, "--database-url", jq.database_url]) == 0
    assert "steps:" not in capsys.readouterr().out
    assert main(["jobs", "show", handle.id, "--json", "--database-url", jq.database_url]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == []
    for unknown in ("01ZZZZZZZZZZZZZZZZZZZZZZZZ", "abc\x00def"):
        with pytest.raises(NotFoundError):
            jq.admin.job_steps(unknown)
