"""What every table module shares: the status values, the metadata with its naming convention,
MySQL's table options, and the column types (one UTC timestamp type, long text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Dialect, MetaData, String, Text, text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

if TYPE_CHECKING:
    from sqlalchemy.sql.type_api import _BindProcessorType

from jobqueue.errors import NaiveDatetimeError

#: The status values, in the order a job usually passes through them.
PENDING = "pending"
#: Waiting for a concurrency slot (promoted when one frees).
BLOCKED = "blocked"
#: Waiting for its dependencies (``depends_on``): no claim looks at it; made pending by the
#: transaction that finishes its last dependency.
WAITING = "waiting"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
#: Not started by its ``expires_at``: ended by the claim that would have started it too late,
#: or by a failed attempt whose retry would start too late. Never run late.
EXPIRED = "expired"
STATUSES = (WAITING, PENDING, BLOCKED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)
TERMINAL_STATUSES = (SUCCEEDED, FAILED, CANCELLED, EXPIRED)

#: The alembic revision this code expects; a test checks it is the head of alembic/versions.
SCHEMA_REVISION = "0012"
VERSION_TABLE = "jobqueue_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
#: Every table on MySQL/MariaDB: InnoDB (row locks, SKIP LOCKED), binary collation (exact ids).
MYSQL_TABLE: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, and refuses naive datetimes on the way in.

    One type for every timestamp means no backend's idea of time zones leaks in: MySQL gets
    ``DATETIME(6)`` (plain DATETIME truncates to whole seconds), SQLite the ISO text SQLAlchemy
    writes (which sorts correctly), PostgreSQL ``timestamp without time zone``.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"{value!r} has no timezone; pass an aware datetime such as "
                "datetime.now(UTC) so the instant is unambiguous"
            )
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> _BindProcessorType[datetime] | None:
        """The usual conversion, remembering the last value it converted.

        A batch enqueue binds the same ``now`` object as ``created_at`` and ``scheduled_for`` of
        every row; converting it once instead of 2,000 times per 1,000 jobs was a sixth of
        ``enqueue_many``'s time on SQLite. The cache is one immutable pair, replaced whole, so
        threads sharing the processor at worst convert again.
        """
        convert = super().bind_processor(dialect)
        if convert is None:  # pragma: no cover - every dialect here converts datetimes
            return None
        last: list[tuple[Any, Any]] = [(None, None)]

        def process(value: datetime | None) -> Any:
            seen, converted = last[0]
            if value is seen and value is not None:
                return converted
            converted = convert(value)
            last[0] = (value, converted)
            return converted

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# Long text: TEXT on PostgreSQL and SQLite, LONGTEXT on MySQL (whose TEXT stops at 64 KiB).
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def ulid_type() -> TypeEngine[str]:
    """A ULID column: CHAR(26) on MySQL (fixed width, binary collation), VARCHAR elsewhere."""
    return String(26).with_variant(mysql.CHAR(26), "mysql", "mariadb")


def where_set(column: str) -> dict[str, Any]:
    """Index only the rows where ``column`` is set, on the backends that can."""
    where = text(f"{column} IS NOT NULL")
    return {"postgresql_where": where, "sqlite_where": where}
