"""Queue pauses, per-minute outcome counters, cancellation requests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op
from jobqueue.schema import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "job_queue_pauses",
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("paused_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_job_queue_pauses")),
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "job_stats",
        sa.Column("minute", UTCDateTime(), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("process_id", sa.String(26), nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("retried", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("discarded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("minute", "queue", "process_id", name=op.f("pk_job_stats")),
        **MYSQL_OPTIONS,
    )
    op.create_table(
        "job_cancellations",
        sa.Column(
            "job_id", sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_cancellations")),
        **MYSQL_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("job_cancellations")
    op.drop_table("job_stats")
    op.drop_table("job_queue_pauses")
