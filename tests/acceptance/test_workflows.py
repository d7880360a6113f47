"""Workflows with real worker processes, on every backend: a big batch whose workers are
SIGKILLed every 2 s still calls back exactly once, after its last job; a diamond of
dependencies on two workers runs its join once (the RQ #2234 case); cancelling a batch stops
what has not run and asks what runs to stop, and still calls back once."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import workflow_jobs as wf
from sqlalchemy import text

from jobqueue import JobQueue, batch
from jobqueue.schema import CANCELLED, FAILED, RUNNING, SUCCEEDED
from jobqueue.store.history import failed_attempts

from backends import scale_factor
from workers import Work, summary, wait_until

APP = ("--app", "workflow_jobs")


def tagged(jq: JobQueue) -> dict[str, list[tuple[str, str]]]:
    """{tag: [(job id, at)]} of every ledger row, oldest first."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with jq.transaction(read_only=True) as connection:
        for job_id, tag, at in connection.execute(
            text("SELECT job_id, tag, at FROM test_ledger ORDER BY at")
        ):
            found[tag].append((job_id, at))
    return found


def worker_pids(jq: JobQueue) -> list[int]:
    with jq.transaction(read_only=True) as connection:
        return list(
            connection.execute(
                text("SELECT pid FROM job_processes WHERE kind = 'worker'")
            ).scalars()
        )


def callbacks_of(rows: dict[str, list[tuple[str, str]]], prefix: str) -> dict[str, list[str]]:
    """{callback job id: [ledger times]} of the ledger tags starting with ``prefix``."""
    found: dict[str, list[str]] = defaultdict(list)
    for tag, entries in rows.items():
        if tag.startswith(prefix):
            for job_id, at in entries:
                found[job_id].append(at)
    return found


def ran_again_only_when_killed(jq: JobQueue, job_id: str, runs: int) -> None:
    """A job body runs again only when a kill interrupted it: a WorkerLost in its attempt
    history, or (killed before its start was recorded) an uncounted claim, at most one."""
    record = jq.get_job(job_id)
    assert record is not None
    if runs == 1:
        return
    with jq.transaction(read_only=True) as connection:
        lost = [a for a in failed_attempts(connection, job_id) if "WorkerLost" in a.error]
    assert record.attempts >= runs, f"{job_id} ran {runs} times in {record.attempts} claims"
    assert runs <= len(lost) + 2, f"{job_id} ran {runs} times, {len(lost)} kills recorded"


def test_a_batch_under_sigkill_calls_back_exactly_once_after_its_last_job(
    jq: JobQueue, ledger: Callable[[], Any], work: Callable[..., Work]
) -> None:
    count = max(400, int(2000 * scale_factor()))
    failing = {i for i in range(count) if i % 20 == 7}  # 5 %
    rng = random.Random(17)
    with batch(
        on_success=wf.callback.call("success"),
        on_failure=wf.callback.call("failure"),
        on_complete=wf.callback.call("complete"),
        description="sigkill",
    ) as big:
        for i in range(count):
            wf.member.enqueue(i, i in failing, rng.uniform(0.005, 0.03))
        for i in range(3):
            wf.fan_out.enqueue(i, 5)  # 15 children added at run time
        wf.nested.enqueue(0, 10)  # a nested batch opened by a job
    runner = work(*APP, "--processes", "3", "--threads", "4", "--burst")
    kills = 0
    while runner.process.poll() is None:
        pids = worker_pids(jq)
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(2)  # the kill interval itself, not a wait for anything
        assert kills < 200, "the batch never finished:\n" + summary(jq)
    assert runner.wait(60) == 0, summary(jq) + runner.output()[-3000:]
    assert kills >= 2

    record = big.fetch()
    # The jobs, the fan-outs, the nested batch's job and the batch, the children added.
    members = count + 3 + 1 + 1 + 15
    assert record is not None, summary(jq)
    assert (record.status, record.total, record.unfinished) == (FAILED, members, 0)
    assert (record.succeeded, record.failed, record.cancelled) == (
        members - len(failing),
        len(failing),
        0,
    )
    assert jq.count_jobs(status=RUNNING) == 0
    rows = tagged(jq)
    expected = f"{members - len(failing)}/{len(failing)}/0"
    for kind in ("complete", "failure"):
        called = callbacks_of(rows, f"cb:{kind}:")
        assert len(called) == 1, f"on_{kind} was enqueued {len(called)} times"
        ((job_id, runs),) = called.items()
        assert jq.get_job(job_id).status == SUCCEEDED  # type: ignore[union-attr]
        ran_again_only_when_killed(jq, job_id, len(runs))
        assert (f"cb:{kind}:{expected}") in rows
        last_member = max(at for tag, e in rows.items() if tag.startswith("member:") for _, at in e)
        assert min(runs) > last_member, f"on_{kind} ran before the last member"
    assert callbacks_of(rows, "cb:success:") == {}
    nested_done = min(at for _, at in rows["cb:nested-0:10/0/0"])
    assert nested_done < min(at for _, at in rows[f"cb:complete:{expected}"])
    # Every member ran; one ran again only if a kill interrupted it.
    runs_per_job = Counter(
        job_id for tag, e in rows.items() if tag.startswith("member:") for job_id, _ in e
    )
    assert len(runs_per_job) == count + 15 + 10
    for job_id, runs in runs_per_job.items():
        ran_again_only_when_killed(jq, job_id, runs)


def test_a_diamond_on_two_workers_joins_once_and_honours_each_failure_policy(
    jq: JobQueue, ledger: Callable[[], Any], work: Callable[..., Work]
) -> None:
    handles: dict[str, Any] = {}
    for case, b_fails, policy in (
        ("ok", False, "cancel"),
        ("cancel", True, "cancel"),
        ("run", True, "run"),
    ):
        a = wf.stage.enqueue(f"{case}-a")
        b = wf.stage.using(depends_on=[a]).enqueue(f"{case}-b", b_fails)
        c = wf.stage.using(depends_on=[a]).enqueue(f"{case}-c")
        d = wf.join.using(depends_on=[b, c], on_dependency_failure=policy).enqueue(case)
        handles.update({f"{case}-b": b, f"{case}-c": c, f"{case}-d": d})
    runner = work(*APP, "--processes", "2", "--threads", "2", "--burst")
    assert runner.wait(120) == 0, summary(jq) + runner.output()[-3000:]
    rows = tagged(jq)
    b, c = handles["ok-b"], handles["ok-c"]
    assert handles["ok-d"].result(timeout=5) == {b.id: "OK-B", c.id: "OK-C"}
    assert len(rows["join:ok"]) == 1
    assert rows["join:ok"][0][1] > max(rows["step:ok-b"][0][1], rows["step:ok-c"][0][1])
    assert "join:cancel" not in rows
    cancelled = jq.get_job(handles["cancel-d"].id)
    assert cancelled is not None and cancelled.status == CANCELLED
    assert len(rows["join:run"]) == 1  # once, not once per worker that saw b fail
    assert handles["run-d"].result(timeout=5) == {handles["run-c"].id: "RUN-C"}


def test_cancelling_a_batch_stops_what_has_not_run_and_calls_back_once(
    jq: JobQueue, ledger: Callable[[], Any], work: Callable[..., Work]
) -> None:
    with batch(
        on_complete=wf.callback.call("complete"),
        on_failure=wf.callback.call("failure"),
        on_success=wf.callback.call("success"),
    ) as doomed:
        first = wf.hold.enqueue("first")
        wf.hold.enqueue("second")
        pending = [wf.stage.enqueue(f"pending-{i}") for i in range(5)]
        limited = [wf.limited.enqueue(f"limited-{i}") for i in range(3)]  # blocked: a key
        waiting = wf.stage.using(depends_on=[first]).enqueue("waiting")
    assert {jq.get_job(h.id).status for h in limited} == {"blocked"}  # type: ignore[union-attr]
    runner = work(*APP, "--processes", "1", "--threads", "2", "--prefetch", "0", "--burst")
    wait_until(lambda: {"hold:first", "hold:second"} <= set(tagged(jq)), 60, "both holds to run")
    report = doomed.cancel()
    assert report is not None
    unstarted = {h.id for h in [*pending, *limited, waiting]}
    assert report.cancelled == unstarted and len(report.stopping) == 2
    assert runner.wait(120) == 0, summary(jq) + runner.output()[-3000:]
    rows = tagged(jq)
    ran = {job_id for entries in rows.values() for job_id, _ in entries}
    assert not ran & unstarted, "a job cancelled before it ran still ran"
    assert {"saw_cancel:first", "saw_cancel:second"} <= set(rows)
    record = doomed.fetch()
    assert record is not None and (record.status, record.cancelled) == (CANCELLED, 11)
    for kind in ("complete", "failure"):
        called = callbacks_of(rows, f"cb:{kind}:")
        assert len(called) == 1 and len(next(iter(called.values()))) == 1, called
    assert callbacks_of(rows, "cb:success:") == {}
