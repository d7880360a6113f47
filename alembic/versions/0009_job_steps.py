"""``job_steps``: durable steps (``jobqueue.step``, ``iterate``, ``durable_sleep``).

A job's completed steps, keyed by (job id, step name): a later attempt returns a recorded step's
value instead of running it again. ``done`` is false while an ``iterate`` is under way, with its
cursor in ``value``. Rows are deleted with their job (pruning, discard).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op
from jobqueue.schema import LongText, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_steps",
        sa.Column(
            "job_id", sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("value", LongText, nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "name", name=op.f("pk_job_steps")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("job_steps")
