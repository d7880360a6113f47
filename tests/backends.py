"""Test databases on each backend: create, migrate, empty, drop.

Every run creates its own uniquely named databases on the PostgreSQL and MariaDB servers (and
files for SQLite) and drops them at the end, so concurrent runs never collide. A server that
cannot be reached skips its tests with the reason, unless ``JOBQUEUE_REQUIRE_BACKENDS`` names it,
in which case its tests fail.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BACKENDS = ("sqlite", "postgresql", "mysql")
#: The PostgreSQL test database reached through PgBouncer in transaction-pooling mode
#: (``.ci/pgbouncer`` starts one on port 6432). Only modules marked ``pgbouncer`` run on it:
#: the enqueue, claim, notify and worker suites.
PGBOUNCER = "pgbouncer"
PGBOUNCER_URL = os.environ.get(
    "JOBQUEUE_TEST_PGBOUNCER_URL", "postgresql+psycopg://postgres@127.0.0.1:6432/test"
)
ADMIN_URLS = {
    "postgresql": os.environ.get(
        "JOBQUEUE_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("JOBQUEUE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def required_backends() -> set[str]:
    value = os.environ.get("JOBQUEUE_REQUIRE_BACKENDS", "")
    return {name.strip() for name in value.split(",") if name.strip()}


def scale_factor() -> float:
    """``JOBQUEUE_TEST_SCALE`` multiplies stress sizes (1.0 by default)."""
    return float(os.environ.get("JOBQUEUE_TEST_SCALE", "1"))


@dataclass
class TestDatabase:
    backend: str
    url: str
    #: How the tests reach it: the backend's name, or ``pgbouncer`` for PostgreSQL through it.
    route: str = ""
    __test__ = False

    def __post_init__(self) -> None:
        self.route = self.route or self.backend

    def drop(self) -> None:
        if self.backend == "sqlite":
            path = Path(make_url(self.url).database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            return
        database = make_url(self.url).database
        admin = create_engine(ADMIN_URLS[self.backend], isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                if self.backend == "postgresql":
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                else:
                    connection.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        finally:
            admin.dispose()


class BackendUnavailable(Exception):
    pass


def create_database(backend: str, directory: Path) -> TestDatabase:
    """A new empty database on ``backend``; raises BackendUnavailable if its server is down."""
    if backend == PGBOUNCER:
        return _through_pgbouncer(create_database("postgresql", directory))
    name = f"jqtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        return TestDatabase(backend, f"sqlite:///{directory / (name + '.db')}")
    admin_url = ADMIN_URLS[backend]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                connection.execute(
                    text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
    except Exception as error:
        safe = make_url(admin_url).render_as_string(hide_password=True)
        raise BackendUnavailable(f"{backend} server at {safe} is unavailable: {error}") from None
    finally:
        admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return TestDatabase(backend, url)


def _through_pgbouncer(database: TestDatabase) -> TestDatabase:
    """``database`` (created on PostgreSQL directly) as reached through PgBouncer, once a
    connection through it has answered."""
    name = make_url(database.url).database
    url = make_url(PGBOUNCER_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        database.drop()
        safe = make_url(PGBOUNCER_URL).render_as_string(hide_password=True)
        reason = str(error).splitlines()[0]
        raise BackendUnavailable(f"PgBouncer at {safe} is unavailable: {reason}") from None
    finally:
        engine.dispose()
    return TestDatabase("postgresql", url, route=PGBOUNCER)


def direct_url(database: TestDatabase) -> str:
    """The URL that reaches ``database`` on its server directly (not through PgBouncer)."""
    if database.route != PGBOUNCER:
        return database.url
    name = make_url(database.url).database
    admin = make_url(ADMIN_URLS["postgresql"])
    return admin.set(database=name).render_as_string(hide_password=False)
