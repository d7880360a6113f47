"""Writing a dependent job (``depends_on``): its dependencies' states, read with their rows
locked; its status (waiting, due, or cancelled at once); and its edges. What a dependency's
end later does is :mod:`jobqueue.store.dependencies`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from jobqueue.error_record import ErrorRecord
from jobqueue.schema import (
    CANCELLED,
    PENDING,
    SUCCEEDED,
    TERMINAL_STATUSES,
    WAITING,
    job_batches,
    job_dependencies,
    job_queue,
)
from jobqueue.store.dependencies import Ended, batch_outcome
from jobqueue.store.dialect import locking


@dataclass(frozen=True)
class Needs:
    """A dependent's ``depends_on`` (job or batch ids) and its ``on_dependency_failure``."""

    ids: tuple[str, ...]
    run_on_failure: bool


_OPEN, _OK, _FAILED = "open", "ok", "failed"
#: (dependency id, dependent id, run on failure, awaited)
Edge = tuple[str, str, bool, bool]


def prepare_dependents(
    connection: Connection,
    rows: Sequence[dict[str, Any]],
    needs: Sequence[Needs | None],
    now: datetime,
) -> list[Edge]:
    """Set the status of each row that has dependencies, before it is inserted: ``waiting``
    with its count of open ones, ``cancelled`` if one already failed and it said "cancel",
    else as it was (due). Returns the edges to write once the rows are in.

    The dependencies are read with their rows locked (PostgreSQL, MySQL), so a dependency
    cannot end unseen between this read and the commit: its outcome's write waits for this
    transaction and then finds the edge. A dependency earlier in the same call counts as open
    (or as failed, if it was itself cancelled here). An unknown id is a ValueError.
    """
    state = _dependency_states(connection, rows, needs)
    ancestors = _Ancestors(connection)
    edges: list[Edge] = []
    for row, need in zip(rows, needs, strict=True):
        if need is not None:
            _check(row, need, state, ancestors)
            _set_status(row, need, state, now)
            # Every dependency gets its edge (dependency_results() reads them); only the
            # open ones are awaited.
            edges += [(d, row["id"], need.run_on_failure, state[d] == _OPEN) for d in need.ids]
        state[row["id"]] = _FAILED if row["status"] == CANCELLED else _OPEN
    return edges


def _check(row: dict[str, Any], need: Needs, state: dict[str, str], ancestors: _Ancestors) -> None:
    """Refuse what could never run: a dependency written later in the same call (or not at
    all), or a batch the job is itself a member of (it would wait for its own end)."""
    later = [d for d in need.ids if d not in state]
    if later:
        raise ValueError(
            f"depends_on: {', '.join(later)} is not written before this job (a dependency "
            "must be enqueued first)"
        )
    batches = ancestors.of(row.get("batch_id"))
    own = set(need.ids) & batches
    if own:
        raise ValueError(
            f"depends_on: the job is a member of batch {own.pop()}, which cannot finish "
            "before the job does"
        )
    if batches and _waits_for(ancestors.connection, need.ids, batches):
        raise ValueError(
            "depends_on: a dependency waits (itself or through its own dependencies) for a "
            "batch this job is a member of, which cannot finish before the job does"
        )


def _set_status(row: dict[str, Any], need: Needs, state: dict[str, str], now: datetime) -> None:
    """From scratch (a retried transaction sees the same rows again): cancelled, waiting, or
    due."""
    row.update(status=PENDING, open_dependencies=None)
    row.pop("finished_at", None)
    row.pop("last_error", None)
    failed = [d for d in need.ids if state[d] == _FAILED]
    if failed and not need.run_on_failure:
        error = ErrorRecord(
            "jobqueue.DependencyFailed",
            f"cancelled at enqueue: its dependency {failed[0]} did not succeed "
            '(on_dependency_failure="cancel")',
        )
        # Its unique key is let go, as for every job that ends (another enqueue may take it).
        row.update(status=CANCELLED, finished_at=now, last_error=error.to_json(), unique_key=None)
        return
    open_ids = [d for d in need.ids if state[d] == _OPEN]
    if open_ids:
        row.update(status=WAITING, open_dependencies=len(open_ids))


def _waits_for(connection: Connection, ids: Sequence[str], batches: set[str]) -> bool:
    """Whether any of ``ids`` awaits one of ``batches``, directly or down its awaited edges
    (read for jobs in batches only: a cycle can be closed only through a batch, since every
    other dependency exists before its dependent)."""
    seen, frontier = set(ids), list(ids)
    while frontier:
        awaited = connection.execute(
            select(job_dependencies.c.dependency_id).where(
                job_dependencies.c.dependent_id.in_(frontier),
                job_dependencies.c.awaited.is_(True),
            )
        ).scalars()
        frontier = [d for d in set(awaited) if d not in seen]
        if batches & set(frontier):
            return True
        seen.update(frontier)
    return False


class _Ancestors:
    """A batch and the batches it is nested in, read once per batch."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._parents: dict[str, str | None] = {}

    def of(self, batch_id: str | None) -> set[str]:
        found: set[str] = set()
        while batch_id is not None and batch_id not in found:
            found.add(batch_id)
            if batch_id not in self._parents:
                self._parents[batch_id] = self.connection.execute(
                    select(job_batches.c.parent_id).where(job_batches.c.id == batch_id)
                ).scalar()
            batch_id = self._parents[batch_id]
        return found


def _dependency_states(
    connection: Connection, rows: Sequence[dict[str, Any]], needs: Sequence[Needs | None]
) -> dict[str, str]:
    """{dependency id: open, ok or failed} for every id named outside ``rows``."""
    in_call = {row["id"] for row in rows}
    wanted = sorted({d for need in needs if need for d in need.ids} - in_call)
    state: dict[str, str] = {}
    if not wanted:
        return state
    jobs = connection.execute(
        locking(
            connection,
            select(job_queue.c.id, job_queue.c.status)
            .where(job_queue.c.id.in_(wanted))
            .order_by(job_queue.c.id),
        )
    ).all()
    for job in jobs:
        finished = job.status in TERMINAL_STATUSES
        state[job.id] = _OPEN if not finished else _OK if job.status == SUCCEEDED else _FAILED
    rest = [d for d in wanted if d not in state]
    if rest:
        batches = connection.execute(
            locking(
                connection,
                select(job_batches).where(job_batches.c.id.in_(rest)).order_by(job_batches.c.id),
            )
        ).all()
        for batch in batches:
            finished = batch.finished_at is not None
            outcome = batch_outcome(batch) if finished else None
            state[batch.id] = _OPEN if not finished else _OK if outcome == SUCCEEDED else _FAILED
    missing = [d for d in wanted if d not in state]
    if missing:
        raise ValueError(
            f"depends_on: no job or batch {', '.join(missing)} (a dependency must be enqueued "
            "before the job that depends on it; it may also have been pruned)"
        )
    return state


def write_edges(connection: Connection, edges: Sequence[Edge], renamed: dict[str, str]) -> None:
    """Insert the edges of dependents that were inserted, and mark their awaited job
    dependencies as having dependents (so their outcome looks for them). ``renamed``: a
    unique job's id in this call -> the id of the queued twin that stands for it."""
    if not edges:
        return
    rows: list[dict[str, Any]] = [
        {
            "dependency_id": renamed.get(d, d),
            "dependent_id": dependent,
            "run_on_failure": run,
            "awaited": awaited,
        }
        for d, dependent, run, awaited in edges
    ]
    connection.execute(job_dependencies.insert(), rows)
    flagged = sorted({r["dependency_id"] for r in rows if r["awaited"]})
    if flagged:
        connection.execute(
            update(job_queue).where(job_queue.c.id.in_(flagged)).values(has_dependents=True)
        )


def ended_twins(
    connection: Connection, edges: Sequence[Edge], renamed: dict[str, str]
) -> list[Ended]:
    """The queued twins standing in for unique dependencies of this call that have already
    ended (read with their rows locked, after their edges were written): their end came before
    the edges, so it is to be carried to these dependents now. A twin still unfinished settles
    them itself when it ends, since it is marked as having dependents."""
    twins = sorted({renamed[edge[0]] for edge in edges if edge[0] in renamed})
    if not twins:
        return []
    rows = connection.execute(
        locking(
            connection,
            select(job_queue.c.id, job_queue.c.status)
            .where(job_queue.c.id.in_(twins), job_queue.c.status.in_(TERMINAL_STATUSES))
            .order_by(job_queue.c.id),
        )
    ).all()
    return [Ended(row.id, row.status) for row in rows]
