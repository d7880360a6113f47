"""Jobs for the workflow acceptance tests (tests/acceptance/test_workflows.py), run by real
``jobrunner work`` processes next to ledger_jobs: each writes a ledger row per execution, so a
test can count exactly how often each job ran and in what order."""

from __future__ import annotations

import time

from sqlalchemy import Connection

from jobqueue import (
    FailJob,
    JobCancelled,
    batch,
    cancel_requested,
    current_batch,
    dependency_results,
    job,
    step,
)

from ledger_jobs import write_ledger


@job(name="wf.member", max_attempts=3, backoff=0.1)
def member(index: int, fail: bool, seconds: float) -> int:
    write_ledger(f"member:{index}")
    time.sleep(seconds)
    if fail:
        raise FailJob(f"member {index} fails for good")
    return index


@job(name="wf.fan_out", max_attempts=3, backoff=0.1)
def fan_out(index: int, children: int) -> None:
    """Adds ``children`` jobs to its own batch while it runs (fan-out at run time), in a
    transactional step: a kill and a rerun add them once."""
    write_ledger(f"fan_out:{index}")
    found = current_batch()
    assert found is not None
    calls = [member.call(10_000 + index * 100 + i, False, 0.01) for i in range(children)]
    step("children", lambda connection: found.add(*calls, connection=connection) and None,
         transaction=True)  # fmt: skip


@job(name="wf.nested", max_attempts=3, backoff=0.1)
def nested(index: int, children: int) -> None:
    """Opens a batch inside a job of the batch (a member of it, with a callback of its own),
    in a transactional step: a kill and a rerun open it once."""
    write_ledger(f"nested:{index}")

    def open_batch(connection: Connection) -> None:
        with batch(on_complete=callback.call(f"nested-{index}"), connection=connection):
            for i in range(children):
                member.enqueue(20_000 + index * 100 + i, False, 0.01)

    step("nested batch", open_batch, transaction=True)


@job(name="wf.callback", max_attempts=5, backoff=0.1)
def callback(kind: str) -> None:
    """Records the batch's counts as the callback saw them."""
    found = current_batch()
    assert found is not None
    record = found.fetch()
    assert record is not None
    write_ledger(f"cb:{kind}:{record.succeeded}/{record.failed}/{record.cancelled}")


@job(name="wf.step")
def stage(label: str, fail: bool = False) -> str:
    write_ledger(f"step:{label}")
    if fail:
        raise FailJob(f"{label} fails")
    return label.upper()


@job(name="wf.join")
def join(label: str) -> dict[str, str]:
    write_ledger(f"join:{label}")
    return dependency_results()


@job(name="wf.hold")
def hold(label: str) -> None:
    """Runs until asked to stop (then ends cancelled), at most a minute."""
    write_ledger(f"hold:{label}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cancel_requested():
            write_ledger(f"saw_cancel:{label}")
            raise JobCancelled("asked to stop")
        time.sleep(0.02)


@job(name="wf.limited", concurrency_limit=1)
def limited(label: str) -> None:
    write_ledger(f"limited:{label}")
