"""Recurring task occurrences.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from jobqueue.schema import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_recurring_runs",
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("fire_at", UTCDateTime(), nullable=False),
        sa.Column("job_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("task", "fire_at", name=op.f("pk_job_recurring_runs")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("job_recurring_runs")
