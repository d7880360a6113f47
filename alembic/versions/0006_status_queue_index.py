"""An index on (status, queue, id) for the dashboard and the operator commands.

Listing jobs of one status and queue newest first (``jobrunner jobs list``, the dashboard's
filtered pages) then reads exactly one page of the index, whatever the table holds; without it
the database fetched every row of that status and queue and sorted them (350 ms for the
succeeded jobs of one queue among 1,000,000 on SQLite). Counting the jobs of each queue and
status (the overview, ``/metrics``) becomes an index-only scan over the unfinished rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_job_queue_status_queue", "job_queue", ["status", "queue", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_queue_status_queue", table_name="job_queue")
