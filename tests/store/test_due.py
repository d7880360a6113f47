"""The read-only "what is due" selection: the claim's predicate and order, without claiming,
and served by the claim index."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from jobqueue import JobCall, JobQueue
from jobqueue.runtime import lifecycle
from jobqueue.schema import PENDING, RUNNING
from jobqueue.store import claims, due


def _claim_one(jq: JobQueue, queue: str) -> str:
    process_id = f"p-due-{queue}"
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id=process_id, kind="worker")
    with jq.transaction() as connection:
        taken = claims.claim_jobs(
            connection, process_id=process_id, queues=[queue], limit=1, now=datetime.now(UTC)
        )
    assert len(taken) == 1
    return taken[0].id


def test_due_jobs_finds_due_work_in_claim_order_and_skips_future_and_running(
    jq: JobQueue,
) -> None:
    now = datetime.now(UTC)
    running = jq.enqueue_many([JobCall("a", queue="busy")])[0].id
    assert _claim_one(jq, "busy") == running
    low, later, first, future = jq.enqueue_many(
        [
            JobCall("a", args=(1,), priority=5),
            JobCall("a", args=(2,), scheduled_for=now - timedelta(minutes=1)),
            JobCall("a", args=(3,), priority=-1),
            JobCall("a", args=(4,), scheduled_for=now + timedelta(hours=1)),
        ]
    )
    other = jq.enqueue_many([JobCall("a", queue="other", scheduled_for=now - timedelta(days=1))])

    found = jq.due_jobs()
    assert [job.id for job in found] == [first.id, other[0].id, later.id, low.id]
    assert future.id not in {job.id for job in found} and running not in {j.id for j in found}
    # Queue by queue in the listed order, as a worker on these queues claims them.
    assert [j.id for j in jq.due_jobs(queues=["other", "default"], limit=2)] == [
        other[0].id,
        first.id,
    ]
    # Reading took nothing: what it listed is still pending and still claimable first.
    assert jq.count_jobs(status=PENDING) == 5 and jq.count_jobs(status=RUNNING) == 1
    assert _claim_one(jq, "default") == first.id


def test_a_paused_queue_has_nothing_due(jq: JobQueue) -> None:
    jq.enqueue_many([JobCall("a", queue="held"), JobCall("a", queue="open")])
    jq.admin.pause("held")
    assert [job.queue for job in jq.due_jobs()] == ["open"]
    assert jq.due_jobs(queues=["held"]) == []


def test_the_due_selection_is_served_by_the_claim_index(jq: JobQueue) -> None:
    """PostgreSQL with sequential scans ruled out, so a plan still scanning has no index to
    use; MySQL and SQLite are asked for their own plan."""
    now = datetime.now(UTC)
    jq.enqueue_many([JobCall("a", queue=f"q{i % 3}", scheduled_for=now) for i in range(30)])
    for queue in ("q1", None):
        with jq.transaction() as connection:
            plan = due.explain_due_jobs(connection, queue=queue, limit=10)
        if jq.dialect == "postgresql":
            # An index scan, or a bitmap heap scan fed by a bitmap scan of a claim index (the
            # planner picks either, by its statistics); never a sequential scan.
            nodes = _nodes(plan)
            scans = [node for node in nodes if node.get("Relation Name") == "job_queue"]
            assert scans, plan
            assert all(
                node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan")
                for node in scans
            ), plan
            indexes = [str(node.get("Index Name", "")) for node in nodes if "Index Cond" in node]
            assert indexes and all(name.startswith("ix_job_queue_") for name in indexes), plan
        elif jq.dialect == "sqlite":
            assert any("SEARCH job_queue USING INDEX ix_job_queue_claim" in s for s in plan), plan
        else:
            table = json.dumps(plan)
            assert '"access_type": "ref"' in table or '"access_type": "range"' in table, plan
            assert '"key": "ix_job_queue_' in table, plan


def _nodes(plan: dict[str, object]) -> list[dict[str, object]]:
    children = plan.get("Plans", [])
    assert isinstance(children, list)
    return [plan, *(node for child in children for node in _nodes(child))]
