"""``job_errors``: the attempt history, one row per counted failed attempt.

``last_error`` keeps only the latest error; this keeps each failed attempt's error record and
the process that ran it (the Django tasks backend's ``TaskResult.errors`` and ``worker_ids``).
Written in the transaction that counts the failure; deleted with the job.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op
from jobqueue.schema import LongText, UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_errors",
        sa.Column(
            "job_id", sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("process_id", sa.String(26), nullable=False),
        sa.Column("error", LongText, nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "attempt", name=op.f("pk_job_errors")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("job_errors")
