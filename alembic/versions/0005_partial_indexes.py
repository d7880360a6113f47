"""Partial indexes for columns that are NULL on most rows (PostgreSQL and SQLite).

A pending job has no ``claimed_by``, and most jobs have no unique or concurrency key, yet every
enqueue wrote an entry for each of them into three indexes. Indexing only the rows that have a
value makes an enqueue touch six indexes instead of nine. MySQL has no partial indexes and keeps
its full ones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (index, columns, unique, the column that must be non-NULL)
PARTIAL = [
    ("ix_job_queue_claimed_by", ["claimed_by"], False, "claimed_by"),
    ("ix_job_queue_unique_key", ["unique_key"], True, "unique_key"),
    ("ix_job_queue_concurrency", ["concurrency_key", "status", "id"], False, "concurrency_key"),
]


def _supported() -> bool:
    return op.get_bind().dialect.name in ("postgresql", "sqlite")


def upgrade() -> None:
    if not _supported():
        return
    for name, columns, unique, column in PARTIAL:
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="job_queue")
        op.create_index(
            name, "job_queue", columns, unique=unique, postgresql_where=where, sqlite_where=where
        )


def downgrade() -> None:
    if not _supported():
        return
    for name, columns, unique, _column in PARTIAL:
        op.drop_index(name, table_name="job_queue")
        op.create_index(name, "job_queue", columns, unique=unique)
