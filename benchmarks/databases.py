"""Throw-away databases for benchmark runs, created and dropped by the harness.

Every measurement gets a database of its own (``jq_bench_<random>`` on the PostgreSQL and
MariaDB servers, a file in a temporary folder for SQLite), so runs never see each other's rows
and a run on a shared server never collides with the test suite or another run. The servers
are the ones the test suite uses; ``JOBQUEUE_BENCH_POSTGRESQL_URL`` / ``JOBQUEUE_BENCH_MYSQL_URL``
point elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url

from jobqueue import migrations
from jobqueue.db import create_engine

BACKENDS = ("sqlite", "postgresql", "mysql")

ADMIN_URLS = {
    "postgresql": os.environ.get(
        "JOBQUEUE_BENCH_POSTGRESQL_URL",
        os.environ.get(
            "JOBQUEUE_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    ),
    "mysql": os.environ.get(
        "JOBQUEUE_BENCH_MYSQL_URL",
        os.environ.get("JOBQUEUE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    ),
}


@dataclass
class Database:
    """One benchmark database: its SQLAlchemy URL and how to get rid of it."""

    backend: str
    url: str

    @property
    def name(self) -> str:
        return make_url(self.url).database or ""

    @property
    def libpq_dsn(self) -> str:
        """The PostgreSQL URL without SQLAlchemy's driver suffix, for psycopg and the peers."""
        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    @property
    def sqlite_path(self) -> Path:
        return Path(make_url(self.url).database or "")

    def drop(self) -> None:
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.sqlite_path) + suffix).unlink(missing_ok=True)
            return
        admin = sa_create_engine(ADMIN_URLS[self.backend], isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                if self.backend == "postgresql":
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
                else:
                    connection.execute(text(f"DROP DATABASE IF EXISTS `{self.name}`"))
        finally:
            admin.dispose()


def create_database(backend: str, directory: Path) -> Database:
    """A new, empty database (no tables) on ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    name = f"jq_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        return Database(backend, f"sqlite:///{directory / (name + '.db')}")
    admin = sa_create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                connection.execute(
                    text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
    finally:
        admin.dispose()
    url = make_url(ADMIN_URLS[backend]).set(database=name)
    return Database(backend, url.render_as_string(hide_password=False))


@contextmanager
def fresh_database(backend: str, directory: Path, *, migrate: bool = True) -> Iterator[Database]:
    """A new database, migrated to jobqueue's schema unless ``migrate`` is False (the peers
    install their own), dropped when the block ends however it ends."""
    database = create_database(backend, directory)
    try:
        if migrate:
            engine = create_engine(database.url)
            try:
                migrations.upgrade(engine)
            finally:
                engine.dispose()
        yield database
    finally:
        database.drop()


def analyze(engine: Engine) -> None:
    """Gather the planner statistics of ``job_queue``, as autovacuum (PostgreSQL) or InnoDB's
    automatic recalculation (MariaDB/MySQL) does by itself within a minute of a bulk insert,
    so that every run sees the plan production sees rather than whichever one the timing of
    the background task picked. Nothing on SQLite, where no one runs ANALYZE."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(
            text("ANALYZE job_queue" if dialect == "postgresql" else "ANALYZE TABLE job_queue")
        )


def analyze_pauses(engine: Engine) -> None:
    """PostgreSQL: give the planner real statistics for the (empty) ``job_queue_pauses``.

    Autovacuum never analyzes a table that stays empty, so the planner assumes the default
    size of a never-analyzed table for it, and on that estimate it plans the claim's NOT
    EXISTS as a hash anti-join that reads and sorts every due job instead of walking the claim
    index for LIMIT rows. This is a diagnostic configuration (what the claim costs once the
    planner sees the table is empty), not something a user is told to do."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("ANALYZE job_queue_pauses"))


def server_description(backend: str) -> str:
    """The server's version and the durability settings that decide commit cost."""
    if backend == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (library linked into Python)"
    engine = sa_create_engine(ADMIN_URLS[backend])
    try:
        with engine.connect() as connection:
            if backend == "postgresql":
                version = connection.execute(text("SHOW server_version")).scalar()
                settings = {
                    name: connection.execute(text(f"SHOW {name}")).scalar()
                    for name in ("fsync", "synchronous_commit", "shared_buffers")
                }
                return f"PostgreSQL {version} ({_settings(settings)})"
            version = connection.execute(text("SELECT VERSION()")).scalar()
            rows = connection.execute(
                text(
                    "SHOW VARIABLES WHERE Variable_name IN ('innodb_flush_log_at_trx_commit', "
                    "'innodb_buffer_pool_size', 'log_bin')"
                )
            ).all()
            return f"MariaDB/MySQL {version} ({_settings({r[0]: r[1] for r in rows})})"
    finally:
        engine.dispose()


def _settings(values: dict[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(values.items()))
