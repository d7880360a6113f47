"""Durable steps in ``jobqueue.testing.inline()`` mode: each step runs once and its value is
recorded in memory, by the worker's JSON rules, on the job's run; iterations run to the end and
record their last cursor; sleeps record their wake time and return at once; a handle's
``result()`` is what the job returned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobqueue import SerializationError, durable_sleep, iterate, job, step
from jobqueue.testing import inline

seen: list[str] = []


def fetch(report_id: int) -> tuple[int, int]:
    seen.append("fetch")
    return (report_id, report_id * 10)


@job(name="inline_steps.report")
def report(report_id: int) -> dict[str, Any]:
    rows = step("fetch", fetch, report_id)
    rendered = [
        chunk
        for chunk in iterate(
            "render", lambda cursor: [{"id": 1}, {"id": 2}, {"id": 3}], key=lambda c: c["id"]
        )
    ]
    durable_sleep("cool-down", timedelta(hours=1))
    url = step("upload", lambda: f"https://example.test/{rows[0]}")
    return {"rows": rows, "chunks": len(rendered), "url": url}


@job(name="inline_steps.twice")
def twice() -> None:
    step("same", lambda: 1)
    step("same", lambda: 2)


@job(name="inline_steps.unjsonable")
def unjsonable() -> None:
    step("set", lambda: {1, 2})


@job(name="inline_steps.bad_return")
def bad_return() -> object:
    return object()


@job(name="inline_steps.async_steps")
async def async_steps(n: int) -> int:
    await asyncio.sleep(0)
    return step("square", lambda: n * n)  # type: ignore[no-any-return]


@job(name="inline_steps.transactional")
def transactional() -> int:
    return step("insert", lambda connection: 1, transaction=True)


def test_inline_records_each_step_and_returns_the_result() -> None:
    seen.clear()
    before = datetime.now(UTC)
    with inline() as runs:
        handle = report.enqueue(7)
    assert seen == ["fetch"]
    (run,) = runs
    assert (run.job_id, run.name) == (handle.id, "inline_steps.report")
    # What a worker would read back: JSON, so the tuple comes back as a list.
    assert run.steps["fetch"] == [7, 70]
    assert run.steps["render"] == 3  # the last cursor
    assert run.steps["upload"] == "https://example.test/7"
    wake = datetime.fromisoformat(run.steps["cool-down"])
    assert before + timedelta(hours=1) <= wake <= datetime.now(UTC) + timedelta(hours=1)
    assert list(run.steps) == ["fetch", "render", "cool-down", "upload"]
    assert (
        handle.result() == run.result == {"rows": [7, 70], "chunks": 3, "url": run.steps["upload"]}
    )


def test_each_run_records_its_own_steps() -> None:
    with inline() as runs:
        report.enqueue(1)
        report.enqueue(2)
        async_steps.enqueue(4)
    assert [run.steps.get("fetch") for run in runs.named("inline_steps.report")] == [
        [1, 10],
        [2, 20],
    ]
    assert runs.named("inline_steps.async_steps")[0].steps == {"square": 16}
    assert runs[-1].result == 16


def test_inline_steps_keep_the_workers_rules() -> None:
    with inline() as runs:
        with pytest.raises(ValueError, match="already ran in this job"):
            twice.enqueue()
        with pytest.raises(SerializationError):
            unjsonable.enqueue()
        with pytest.raises(SerializationError, match=r"inline_steps\.bad_return"):
            bad_return.enqueue()
        with pytest.raises(RuntimeError, match=r"inline\(jobqueue="):
            transactional.enqueue()
    assert runs[0].steps == {"same": 1}  # the first one ran and was recorded
    assert runs[1].steps == {}


def test_bad_step_arguments_are_errors_outside_a_worker_too() -> None:
    with pytest.raises(ValueError, match="every"):
        list(iterate("items", lambda cursor: [1], key=lambda i: i, every=0))
    with pytest.raises(ValueError, match="aware datetime"):
        durable_sleep("nap", datetime(2030, 1, 1))
