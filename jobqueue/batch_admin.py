"""Operator actions on batches (``jobrunner batches``, the dashboard, ``JobQueue.batches``):
list, show, cancel, prune. Each action is one short transaction, and logs what it changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from jobqueue.database import Database
from jobqueue.options import well_formed_id
from jobqueue.schema import CANCELLED, FAILED
from jobqueue.store import batches
from jobqueue.store.batches import BatchRecord, CancelReport

log = structlog.get_logger("jobqueue.admin")

#: Jobs deleted per transaction when finished batches are pruned.
PRUNE_CHUNK = 1000


class BatchAdmin:
    """Batches of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def newest(self, *, unfinished_only: bool = False, limit: int = 50) -> list[BatchRecord]:
        """The newest batches first."""
        with self.database.transaction(read_only=True) as connection:
            return batches.list_batches(connection, unfinished_only=unfinished_only, limit=limit)

    def get(self, batch_id: str) -> BatchRecord | None:
        """One batch, with its jobs counted by status (None: no such batch)."""
        if not well_formed_id(batch_id):
            return None
        with self.database.transaction(read_only=True) as connection:
            return batches.fetch_batch(connection, batch_id)

    def failed_jobs(self, batch_id: str, *, limit: int = 50) -> list[tuple[str, str, str]]:
        """(id, name, status) of the batch's jobs that failed or were cancelled."""
        with self.database.transaction(read_only=True) as connection:
            return batches.batch_jobs(
                connection, batch_id, statuses=[FAILED, CANCELLED], limit=limit
            )

    def cancel(self, batch_id: str) -> CancelReport | None:
        """Cancel the batch and its nested batches (see :meth:`jobqueue.Batch.cancel`); None
        if there is no such batch."""
        if not well_formed_id(batch_id):
            return None
        with self.database.transaction() as connection:
            report = batches.cancel_batch(connection, batch_id, datetime.now(UTC))
        if report is not None:
            log.info(
                "batch_cancelled",
                batch_id=batch_id,
                cancelled=len(report.cancelled),
                stop_requested=len(report.stopping),
                nested=len(report.batches) - 1,
            )
        return report

    def prune(self, *, older_than: timedelta, max_rounds: int | None = None) -> int:
        """Delete batches that finished more than ``older_than`` ago with their jobs (every
        member, whatever its status, and the callbacks), a few rows per transaction so that
        claiming is never held up for long. Returns the rows deleted."""
        cutoff = datetime.now(UTC) - older_than
        total = rounds = 0
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            with self.database.transaction() as connection:
                deleted = batches.prune_finished(connection, cutoff=cutoff, limit=PRUNE_CHUNK)
            total += deleted
            if not deleted:
                break
        if total:
            log.info("batches_pruned", rows=total)
        return total
