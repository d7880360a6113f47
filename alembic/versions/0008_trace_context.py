"""``job_queue.trace_context``: the enqueuing code's trace, continued when the job runs.

With OpenTelemetry installed (the ``otel`` extra), enqueue stores the W3C trace context of its
``send`` span here as JSON, and each attempt's ``process`` span takes it as its parent (see
:mod:`jobqueue.tracing`). NULL without tracing. Nullable and without a default, so adding it
rewrites no rows on any backend.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_queue", sa.Column("trace_context", sa.String(512), nullable=True))


def downgrade() -> None:
    op.drop_column("job_queue", "trace_context")
