"""An index on (status, queue, id) for the dashboard and the operator commands; the index on
(status, finished_at) becomes partial (PostgreSQL and SQLite) so that writers pay no more.

Listing jobs of one status and queue newest first (``jobrunner jobs list``, the dashboard's
filtered pages) then reads exactly one page of the index, whatever the table holds; without it
the database fetched every row of that status and queue and sorted them (350 ms for the
succeeded jobs of one queue among 1,000,000 on SQLite). Counting the jobs of each queue and
status (the overview, ``/metrics``) becomes an index-only scan over the unfinished rows.

A new index costs every status change an index update (about 4 % of SQLite's no-op throughput).
``ix_job_queue_finished`` serves only pruning, which asks for finished jobs: indexing just the
rows with a ``finished_at`` takes pending jobs out of it, so an enqueue writes no entry there
and a claim moves none, which pays the new index back. MySQL has no partial indexes and keeps
the full one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = ("ix_job_queue_finished", ["status", "finished_at"])


def _partial_supported() -> bool:
    return op.get_bind().dialect.name in ("postgresql", "sqlite")


def upgrade() -> None:
    op.create_index("ix_job_queue_status_queue", "job_queue", ["status", "queue", "id"])
    if _partial_supported():
        name, columns = FINISHED
        where = sa.text("finished_at IS NOT NULL")
        op.drop_index(name, table_name="job_queue")
        op.create_index(name, "job_queue", columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    if _partial_supported():
        name, columns = FINISHED
        op.drop_index(name, table_name="job_queue")
        op.create_index(name, "job_queue", columns)
    op.drop_index("ix_job_queue_status_queue", table_name="job_queue")
