"""Profile A's selection, and the database facts about it the harness asks its host for.

The selection is :meth:`jobqueue.JobQueue.due_jobs`, unbounded, over the sweep's queues: the
claim's own predicate and order (:mod:`jobqueue.store.due`). Whether an index serves it is read
from :func:`jobqueue.store.due.explain_due_jobs`, the plan each database chooses:

* PostgreSQL, with sequential scans ruled out, judged by the harness's own plan reader
  (:func:`due_work_harness.integrations.postgres_plans.index_served_verdict`): a plan that still
  scans, or walks an index with no condition, has no index to narrow it;
* MariaDB/MySQL, ``EXPLAIN FORMAT=JSON``: ``job_queue`` read by ``ref`` or ``range`` on a claim
  index, never ``ALL`` (a table scan) or ``index`` (a whole index walked);
* SQLite, ``EXPLAIN QUERY PLAN``: ``SEARCH job_queue USING INDEX ix_job_queue_claim...``, never
  ``SCAN job_queue``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from due_work_harness.host import ReadCosts
from due_work_harness.integrations.postgres_plans import index_served_verdict
from sqlalchemy import event

from jobqueue.queue import JobQueue
from jobqueue.store.due import DueJob, explain_due_jobs

TABLE = "job_queue"
CLAIM_INDEXES = ("ix_job_queue_claim", "ix_job_queue_claim_all")


@dataclass(frozen=True)
class DueSelection:
    """What a worker on ``queues`` would claim, in claim order: iterating it reads
    ``jobqueue.due_jobs(queues=queues, limit=None)`` afresh."""

    jobqueue: JobQueue
    queues: tuple[str, ...]

    def __iter__(self) -> Iterator[DueJob]:
        return iter(self.jobqueue.due_jobs(queues=list(self.queues), limit=None))


def _plans(selection: DueSelection) -> list[Any]:
    plans = []
    for queue in selection.queues:
        with selection.jobqueue.transaction() as connection:
            plans.append(explain_due_jobs(connection, queue=queue, limit=None))
    return plans


def _mysql_tables(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``"table"`` object of a MySQL/MariaDB JSON plan."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "table" and isinstance(value, dict):
                yield value
            yield from _mysql_tables(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mysql_tables(item)


def mysql_verdict(plan: Any) -> str | None:
    """``None`` when every read of ``job_queue`` narrows by a claim index, else why not."""
    tables = [t for t in _mysql_tables(plan) if t.get("table_name") == TABLE]
    if not tables:
        return f"no plan node reads {TABLE!r}: {json.dumps(plan)}"
    for table in tables:
        if (
            table.get("access_type") not in ("ref", "range")
            or table.get("key") not in CLAIM_INDEXES
        ):
            return (
                f"{TABLE!r} is read by {table.get('access_type')!r} on {table.get('key')!r}, not "
                f"by ref or range on a claim index: the whole table or index is read on every "
                f"poll. Plan: {json.dumps(plan)}"
            )
    return None


def sqlite_verdict(plan: list[str]) -> str | None:
    """``None`` when SQLite searches ``job_queue`` through a claim index and never scans it."""
    scans = [line for line in plan if line.startswith(f"SCAN {TABLE}")]
    searches = [
        line for line in plan if line.startswith(f"SEARCH {TABLE} USING INDEX ix_job_queue_")
    ]
    if scans or not searches:
        return f"SQLite does not search {TABLE!r} through a claim index: {plan}"
    return None


def plan_verdict(plan: Any) -> str | None:
    """The verdict for a plan of :func:`~jobqueue.store.due.explain_due_jobs`, by its shape:
    SQLite's detail lines, PostgreSQL's plan node, or MySQL's document."""
    if isinstance(plan, list):
        return sqlite_verdict(plan)
    if "Node Type" in plan:
        return index_served_verdict(plan, table=TABLE)
    return mysql_verdict(plan)


class DueSelectionInspector:
    """The host's :class:`~due_work_harness.SelectionInspector` for :class:`DueSelection`."""

    def understands(self, selection: object) -> bool:
        return isinstance(selection, DueSelection)

    def index_served(self, selection: object) -> tuple[bool, str]:
        due = _due(selection)
        for plan in _plans(due):
            verdict = plan_verdict(plan)
            if verdict is not None:
                return False, verdict
        return True, f"{due.jobqueue.dialect}: each queue's due read is narrowed by a claim index"

    def replica_read(self, selection: object) -> str | None:
        """jobqueue routes no read to a replica: the selection must run on the one engine its
        queue claims and writes through. Observed, not assumed: its statements are captured
        there, and one that ran elsewhere is reported by that engine's URL."""
        due = _due(selection)
        seen = statements_on(due.jobqueue, lambda: list(due))
        if not any(TABLE in sql for sql in seen):
            return f"not {due.jobqueue.engine.url.render_as_string(hide_password=True)}"
        return None

    def scan_counts(self, selection: object) -> tuple[float, float]:
        raise AssertionError("jobqueue's host measures plans, not executed scan counts")

    def read_costs(self, selection: object) -> ReadCosts:
        raise AssertionError("jobqueue's host measures plans, not executed read costs")

    def statements_during(self, run: Callable[[], object]) -> list[str]:
        raise AssertionError(
            "jobqueue's host counts no statements: a tick runs on the worker's own engine"
        )


def statements_on(jobqueue: JobQueue, run: Callable[[], object]) -> list[str]:
    """The SQL ``run`` executed through ``jobqueue``'s engine, in order."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(jobqueue.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(jobqueue.engine, "before_cursor_execute", record)
    return seen


def _due(selection: object) -> DueSelection:
    assert isinstance(selection, DueSelection), f"not a DueSelection: {selection!r}"
    return selection
