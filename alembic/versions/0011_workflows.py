"""Workflows: batches (``job_batches``), dependencies (``job_dependencies``), and on
``job_queue`` the columns that tie a job to them and the ``waiting`` status.

``waiting`` is a dependent job whose dependencies have not all finished: no claim looks at it.
The status CHECK constraint is replaced to admit it (on SQLite, batch mode rebuilds the table).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from alembic import op
from jobqueue.schema import LongText, UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
OLD_STATUSES = ("pending", "blocked", "running", "succeeded", "failed", "cancelled")
NEW_STATUSES = ("waiting", *OLD_STATUSES)


def _ulid() -> Any:
    return sa.String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb")


def _statuses(statuses: Sequence[str]) -> str:
    return "status IN ({})".format(", ".join(f"'{s}'" for s in statuses))


def _where_set(column: str) -> dict[str, Any]:
    where = sa.text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}


def upgrade() -> None:
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_constraint(op.f("ck_job_queue_status"), type_="check")
        batch.create_check_constraint("status", _statuses(NEW_STATUSES))
        batch.add_column(sa.Column("batch_id", _ulid(), nullable=True))
        batch.add_column(sa.Column("callback_of", _ulid(), nullable=True))
        batch.add_column(sa.Column("open_dependencies", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("has_dependents", sa.Boolean(), nullable=True))
        batch.create_index("ix_job_queue_batch", ["batch_id", "status"], **_where_set("batch_id"))
    zero = sa.text("0")
    op.create_table(
        "job_batches",
        sa.Column("id", _ulid(), nullable=False),
        sa.Column("parent_id", _ulid(), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("callbacks", LongText, nullable=True),
        sa.Column("total", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("unfinished", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("failed", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("cancelled", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("callback_ids", sa.Text(), nullable=True),
        sa.Column("callbacks_unfinished", sa.Integer(), nullable=True),
        sa.Column("callbacks_failed", sa.Integer(), server_default=zero, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("members_done_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_batches")),
        **MYSQL_OPTIONS,
    )
    op.create_index(
        "ix_job_batches_parent", "job_batches", ["parent_id"], **_where_set("parent_id")
    )
    op.create_index(
        "ix_job_batches_finished", "job_batches", ["finished_at"], **_where_set("finished_at")
    )
    op.create_table(
        "job_dependencies",
        sa.Column("dependency_id", _ulid(), nullable=False),
        sa.Column("dependent_id", _ulid(), nullable=False),
        sa.Column("run_on_failure", sa.Boolean(), nullable=False),
        sa.Column("awaited", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("dependency_id", "dependent_id", name=op.f("pk_job_dependencies")),
        **MYSQL_OPTIONS,
    )
    op.create_index("ix_job_dependencies_dependent", "job_dependencies", ["dependent_id"])


def downgrade() -> None:
    op.drop_table("job_dependencies")
    op.drop_table("job_batches")
    with op.batch_alter_table("job_queue") as batch:
        batch.drop_index("ix_job_queue_batch")
        batch.drop_column("has_dependents")
        batch.drop_column("open_dependencies")
        batch.drop_column("callback_of")
        batch.drop_column("batch_id")
        batch.drop_constraint(op.f("ck_job_queue_status"), type_="check")
        batch.create_check_constraint("status", _statuses(OLD_STATUSES))
