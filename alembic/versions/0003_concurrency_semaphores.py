"""Concurrency limits: job_semaphores, and the promotion index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "job_semaphores",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("max_running", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_job_semaphores")),
        **MYSQL_OPTIONS,
    )
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_index("ix_job_queue_concurrency")
        batch.create_index("ix_job_queue_concurrency", ["concurrency_key", "status", "id"])


def downgrade() -> None:
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_index("ix_job_queue_concurrency")
        batch.create_index("ix_job_queue_concurrency", ["concurrency_key", "status"])
    op.drop_table("job_semaphores")
