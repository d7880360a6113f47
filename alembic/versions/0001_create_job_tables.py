"""Create job_queue and job_processes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op
from jobqueue.schema import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "job_queue",
        sa.Column(
            "id", sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("args", long_text(), nullable=False),
        sa.Column("queue", sa.String(100), server_default="default", nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("25"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(26), nullable=True),
        sa.Column("last_error", long_text(), nullable=True),
        sa.Column("unique_key", sa.String(64), nullable=True),
        sa.Column("concurrency_key", sa.String(255), nullable=True),
        sa.Column("result", long_text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'blocked', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_job_queue_status"),
        ),
        sa.CheckConstraint(
            "priority BETWEEN -1000000 AND 1000000", name=op.f("ck_job_queue_priority")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_queue")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("job_queue") as batch:
        batch.create_index(
            "ix_job_queue_claim", ["queue", "status", "priority", "scheduled_for", "id"]
        )
        batch.create_index("ix_job_queue_claim_all", ["status", "priority", "scheduled_for", "id"])
        batch.create_index("ix_job_queue_due", ["status", "scheduled_for"])
        batch.create_index("ix_job_queue_due_by_queue", ["queue", "status", "scheduled_for"])
        batch.create_index("ix_job_queue_claimed_by", ["claimed_by"])
        batch.create_index("ix_job_queue_finished", ["status", "finished_at"])
        batch.create_index("ix_job_queue_unique_key", ["unique_key"], unique=True)
        batch.create_index("ix_job_queue_concurrency", ["concurrency_key", "status"])

    op.create_table(
        "job_processes",
        sa.Column(
            "id", sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("supervisor_id", sa.String(26), nullable=True),
        sa.Column("queues", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_processes")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("job_processes") as batch:
        batch.create_index("ix_job_processes_heartbeat", ["last_heartbeat_at"])
        batch.create_index("ix_job_processes_supervisor", ["supervisor_id"])


def downgrade() -> None:
    op.drop_table("job_processes")
    op.drop_table("job_queue")
