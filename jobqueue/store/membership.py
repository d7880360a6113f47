"""What a row written by enqueue joins, in the enqueue's transaction: the edges of the
dependents written (and the end of a unique dependency's queued twin that ended before them),
the counts of the batches whose members were written, the end of the jobs cancelled as they
were written, and the cancellation of those that joined a cancelled batch."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from jobqueue.schema import CANCELLED
from jobqueue.store.cancelling import cancel_waiting
from jobqueue.store.dependencies import Ended
from jobqueue.store.depends_on import Edge, ended_twins, write_edges
from jobqueue.store.workflow import add_members, finish


def settle_written(
    connection: Connection,
    inserted: list[dict[str, Any]],
    edges: list[Edge],
    existing: dict[int, str],
    rows: list[dict[str, Any]],
    now: datetime,
) -> None:
    """See the module's docstring; ``existing`` maps the index of a unique row that was not
    written to its queued twin's id."""
    ids = {row["id"] for row in inserted}
    renamed = {rows[index]["id"]: twin for index, twin in existing.items()}
    written = [e for e in edges if e[1] in ids]
    write_edges(connection, written, renamed)
    # Members are counted in first: an end carried below may be a member's.
    members = Counter(row["batch_id"] for row in inserted if row.get("batch_id"))
    cancelled = add_members(connection, dict(members)) if members else set()
    late = ended_twins(connection, written, renamed) if renamed else []
    if late:
        finish(connection, late, now)
    born_cancelled = [
        Ended(row["id"], CANCELLED, batch_id=row.get("batch_id"), has_dependents=False)
        for row in inserted
        if row["status"] == CANCELLED
    ]
    if born_cancelled:
        finish(connection, born_cancelled, now)
    if cancelled:  # added to a cancelled batch: cancelled at once, never run
        joined = [row["id"] for row in inserted if row.get("batch_id") in cancelled]
        cancel_waiting(connection, joined, now)
