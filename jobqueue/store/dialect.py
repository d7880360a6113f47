"""The SQL that differs between backends, in one place: the database clock, and INSERT that
skips or merges a duplicate. Everything else in ``store`` is portable SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, insert, literal_column, select

from jobqueue.schema import UTCDateTime

MYSQL = ("mysql", "mariadb")


def is_mysql(dialect: str) -> bool:
    return dialect in MYSQL


def db_now(dialect: str) -> ColumnElement[datetime]:
    """The database's own clock as naive UTC, comparable with our UTCDateTime columns.

    Heartbeat ages are measured with it, so a host whose clock is skewed is not declared dead.
    On SQLite the text has the six fractional digits SQLAlchemy writes, so it sorts correctly
    against stored values.
    """
    if dialect == "postgresql":
        return literal_column("timezone('UTC', now())", UTCDateTime())
    if is_mysql(dialect):
        return literal_column("UTC_TIMESTAMP(6)", UTCDateTime())
    return literal_column("(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')", UTCDateTime())


def db_now_minus(dialect: str, seconds: float) -> ColumnElement[datetime]:
    """The database clock ``seconds`` ago (for "heartbeat older than the threshold")."""
    micros = int(seconds * 1_000_000)
    if dialect == "postgresql":
        return literal_column(
            f"(timezone('UTC', now()) - interval '{micros} microseconds')", UTCDateTime()
        )
    if is_mysql(dialect):
        return literal_column(
            f"DATE_SUB(UTC_TIMESTAMP(6), INTERVAL {micros} MICROSECOND)", UTCDateTime()
        )
    return literal_column(
        f"(strftime('%Y-%m-%d %H:%M:%f', 'now', '-{micros / 1_000_000:.6f} seconds') || '000')",
        UTCDateTime(),
    )


def dialect_insert(dialect: str, table: Table) -> Any:
    """The dialect's own INSERT construct (``on_conflict_do_*`` on PostgreSQL and SQLite,
    ``on_duplicate_key_update`` on MySQL), imported on first use: loading every dialect's
    module up front cost each process about 70 ms of start-up."""
    if is_mysql(dialect):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        return mysql_insert(table)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_duplicate(
    dialect: str, table: Table, conflict: Sequence[str], where: Any = None
) -> Any:
    """INSERT that skips a row whose ``conflict`` columns are taken, without raising.

    Raising IntegrityError would abort a caller's PostgreSQL transaction, so the conflict is
    skipped by the database: ``ON CONFLICT DO NOTHING`` (``where`` names a partial unique
    index), or ``INSERT IGNORE`` on MySQL, where every value was validated before, so IGNORE
    can only be skipping the duplicate.
    """
    if is_mysql(dialect):
        return insert(table).prefix_with("IGNORE")
    return dialect_insert(dialect, table).on_conflict_do_nothing(
        index_elements=list(conflict), index_where=where
    )


#: PostgreSQL's channel for "a job is due in this queue" (the payload is the queue's name).
NOTIFY_CHANNEL = "jobqueue"


def notify_enqueued(connection: Connection, queues: Iterable[str]) -> None:
    """PostgreSQL: wake listening workers when the enqueuing transaction commits (a no-op
    elsewhere)."""
    if connection.dialect.name != "postgresql":
        return
    for queue in sorted(set(queues)):
        connection.execute(select(func.pg_notify(NOTIFY_CHANNEL, queue)))


def locking(connection: Connection, query: Any) -> Any:
    """``query`` with ``FOR UPDATE`` where the database has row locks (SQLite has one writer,
    and no such clause)."""
    return query if connection.dialect.name == "sqlite" else query.with_for_update()


def locking_skipped(connection: Connection, query: Any) -> Any:
    """``query`` with ``FOR UPDATE SKIP LOCKED`` where the database has row locks: rows another
    transaction holds are left out instead of waited for (so a claim never waits, and never
    takes part in a deadlock, on a row someone else is changing)."""
    if connection.dialect.name == "sqlite":
        return query
    return query.with_for_update(skip_locked=True)
