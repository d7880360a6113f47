"""Flow control: the ``expired`` status and ``job_queue.expires_at`` (a job not started by then
is never run late), its outcome counter, and ``job_queue_bounds``: one row per bounded queue
(``max_pending``), locked by each enqueue into it so concurrent producers count in turn.

Keys (the gate, :mod:`jobqueue.store.gate`): a job with a concurrency or a rate key now waits
as ``blocked`` until its key lets it start, and takes its concurrency slot when it starts.
``job_queue`` gains ``rate_key``, ``rate_cost`` and ``rate_limits``; ``job_semaphores`` becomes
the row of any key (``max_running`` may be NULL; ``served_at`` is new);
``job_rate_starts`` records each start of a rate-limited key. Jobs written under the old rule
are moved to it: a pending job with a concurrency key becomes blocked, and each key's
``held`` becomes the number of its running jobs.

The status CHECK constraint is replaced to admit ``expired`` (on SQLite, batch mode rebuilds
the table).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op
from jobqueue.schema import UTCDateTime


def _ulid() -> Any:
    return sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb")


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


def _where_set(column: str) -> dict[str, Any]:
    where = sa.text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


def _statuses(statuses: Sequence[str]) -> str:
    return "status IN ({})".format(", ".join(f"'{s}'" for s in statuses))


def upgrade() -> None:
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_constraint(op.f("ck_job_queue_status"), type_="check")
        batch.create_check_constraint("status", _statuses(NEW_STATUSES))
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("rate_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("rate_cost", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_limits", sa.String(255), nullable=True))
        batch.create_index(
            "ix_job_queue_rate", ["rate_key", "status", "scheduled_for"], **_where_set("rate_key")
        )
    with op.batch_alter_table("job_semaphores") as batch:
        batch.alter_column("max_running", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("served_at", UTCDateTime(), nullable=True))
    op.create_table(
        "job_rate_starts",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("job_id", _ulid(), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "started_at", "job_id", name=op.f("pk_job_rate_starts")),
        **MYSQL_OPTIONS,
    )
    # Slots are taken at the start now: unstarted jobs of a key wait as blocked, and a key
    # holds as many slots as it has running jobs.
    op.execute(
        "UPDATE job_queue SET status = 'blocked' "
        "WHERE status = 'pending' AND concurrency_key IS NOT NULL"
    )
    op.execute(
        "UPDATE job_semaphores SET held = (SELECT count(*) FROM job_queue "
        "WHERE job_queue.concurrency_key = job_semaphores.key AND job_queue.status = 'running')"
    )
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
    op.execute(
        "UPDATE job_semaphores SET held = (SELECT count(*) FROM job_queue "
        "WHERE job_queue.concurrency_key = job_semaphores.key "
        "AND job_queue.status IN ('pending', 'running'))"
    )
    op.execute("DELETE FROM job_semaphores WHERE max_running IS NULL")
    op.drop_table("job_rate_starts")
    with op.batch_alter_table("job_semaphores") as batch:
        batch.drop_column("served_at")
        batch.alter_column("max_running", existing_type=sa.Integer(), nullable=False)
    op.drop_table("job_queue_bounds")
    op.drop_column("job_stats", "expired")
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_index("ix_job_queue_rate")
        batch.drop_column("rate_limits")
        batch.drop_column("rate_cost")
        batch.drop_column("rate_key")
        batch.drop_column("expires_at")
        batch.drop_constraint(op.f("ck_job_queue_status"), type_="check")
        batch.create_check_constraint("status", _statuses(OLD_STATUSES))
