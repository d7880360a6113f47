"""Flow control: the ``expired`` status and ``job_queue.expires_at`` (a job not started by then
is never run late), its outcome counter, and ``job_queue_bounds``: one row per bounded queue
(``max_pending``), locked by each enqueue into it so concurrent producers count in turn.

The status CHECK constraint is replaced to admit ``expired`` (on SQLite, batch mode rebuilds
the table).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op
from jobqueue.schema import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
OLD_STATUSES = ("waiting", "pending", "blocked", "running", "succeeded", "failed", "cancelled")
NEW_STATUSES = (*OLD_STATUSES, "expired")


def _statuses(statuses: Sequence[str]) -> str:
    return "status IN ({})".format(", ".join(f"'{s}'" for s in statuses))


def upgrade() -> None:
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_constraint(op.f("ck_job_queue_status"), type_="check")
        batch.create_check_constraint("status", _statuses(NEW_STATUSES))
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
    op.add_column(
        "job_stats",
        sa.Column("expired", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "job_queue_bounds",
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("max_pending", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_job_queue_bounds")),
        **MYSQL_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("job_queue_bounds")
    op.drop_column("job_stats", "expired")
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_column("expires_at")
        batch.drop_constraint(op.f("ck_job_queue_status"), type_="check")
        batch.create_check_constraint("status", _statuses(OLD_STATUSES))
