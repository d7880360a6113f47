"""``job_queue.started_attempt``: which attempt is known to have started.

A worker that dies right after claiming (its prefetched jobs, or a job its thread had not yet
picked up) used to have every held job counted as a failed attempt on rescue, so a job with
``max_attempts=1`` could end ``failed`` without ever running. The worker now records, batched
with its next write, which attempts have been running for a while; a rescue counts an attempt
only if its start was recorded (see :func:`jobqueue.store.attempts.rescue_job`).

Nullable and without a default, so adding it rewrites no rows on any backend.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_queue", sa.Column("started_attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("job_queue", "started_attempt")
