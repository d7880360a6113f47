"""Shared fixtures: one migrated database per backend per test session, emptied between tests.

Any test that uses ``jq`` or ``backend`` runs once on each of SQLite, PostgreSQL and MariaDB, and
in the modules marked ``pgbouncer`` once more on PostgreSQL through PgBouncer.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import delete, text

import jobqueue
from jobqueue import JobQueue, migrations
from jobqueue.db import create_engine
from jobqueue.registry import registry
from jobqueue.schema import metadata

sys.path.insert(0, str(Path(__file__).parent))

from backends import (
    BACKENDS,
    PGBOUNCER,
    BackendUnavailable,
    TestDatabase,
    create_database,
    required_backends,
)
from workers import ledger, work  # noqa: F401 - fixtures shared by the process tiers

# tests/django_tier runs in its own Python >= 3.12 environment with Django 6 (started by
# tests/test_django_tier.py); where Django is not installed, it is not collected here.
collect_ignore = [] if importlib.util.find_spec("django") else ["django_tier"]

_backend_use: Counter[str] = Counter()
_unavailable: dict[str, str] = {}


def unavailable(backend: str, reason: str) -> None:
    """Skip (or fail, where the backend is required) a test whose server is down."""
    _unavailable[backend] = reason
    if backend in required_backends():
        pytest.fail(f"{reason} (required by JOBQUEUE_REQUIRE_BACKENDS)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestDatabase]]:
    created: dict[str, TestDatabase] = {}
    yield created
    for database in created.values():
        database.drop()


@pytest.fixture(scope="session", params=(*BACKENDS, PGBOUNCER))
def backend(
    request: pytest.FixtureRequest,
    _databases: dict[str, TestDatabase],
    tmp_path_factory: pytest.TempPathFactory,
) -> TestDatabase:
    """The shared, migrated test database of one backend."""
    name: str = request.param
    if name in _unavailable:
        unavailable(name, _unavailable[name])
    if name not in _databases:
        try:
            database = create_database(name, tmp_path_factory.mktemp("db"))
        except BackendUnavailable as error:
            unavailable(name, str(error))
        engine = create_engine(database.url)
        try:
            migrations.upgrade(engine)
        finally:
            engine.dispose()
        _databases[name] = database
    return _databases[name]


@pytest.fixture
def jq(backend: TestDatabase) -> Iterator[JobQueue]:
    """A JobQueue on the backend's shared database, emptied before the test."""
    _backend_use[backend.route] += 1
    queue = JobQueue(backend.url)
    with queue.transaction() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(delete(table))
    vacuum_if_bloated(queue)
    jobqueue.set_default_queue(queue)
    try:
        yield queue
    finally:
        jobqueue.set_default_queue(None)
        queue.close()


def vacuum_if_bloated(queue: JobQueue) -> None:
    """PostgreSQL: VACUUM ANALYZE the shared database once its deleted rows pile up.

    Each test empties the tables with DELETE, which on PostgreSQL leaves dead rows for
    (auto)vacuum. CI's server runs with autovacuum off, so after the million-row clear every
    later claim walked a million dead index entries: one test took 25 minutes and the suite 48.
    A production database has autovacuum; the tests' shared database gets this instead.
    """
    if queue.dialect != "postgresql":
        return
    with queue.engine.connect() as connection:
        dead = connection.execute(
            text("SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables")
        ).scalar_one()
    if dead < 20_000:
        return
    with queue.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


@pytest.fixture
def fresh_database(
    request: pytest.FixtureRequest, backend_name: str, tmp_path: Path
) -> Iterator[TestDatabase]:
    """A brand-new empty database (not migrated) on one backend, dropped afterwards."""
    if backend_name in _unavailable:
        unavailable(backend_name, _unavailable[backend_name])
    try:
        database = create_database(backend_name, tmp_path)
    except BackendUnavailable as error:
        unavailable(backend_name, str(error))
    _backend_use[backend_name] += 1
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A CLI call configures structlog onto pytest's captured stderr; undo that after."""
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def isolated_registry() -> Iterator[None]:
    """Jobs a test registers are forgotten after it, so tests can reuse names."""
    saved = dict(registry._definitions)
    try:
        yield
    finally:
        registry._definitions.clear()
        registry._definitions.update(saved)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the PgBouncer route only in the modules marked ``pgbouncer`` (the enqueue, claim,
    notify and worker suites); everywhere else it would repeat the PostgreSQL run."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        routed = callspec is not None and callspec.params.get("backend") == PGBOUNCER
        (dropped if routed and item.get_closest_marker("pgbouncer") is None else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    used = ", ".join(
        f"{name} ({_backend_use[name]} tests)"
        for name in (*BACKENDS, PGBOUNCER)
        if _backend_use[name]
    )
    terminalreporter.write_line(f"jobqueue backends used: {used or 'none'}")
    for name, reason in _unavailable.items():
        terminalreporter.write_line(f"jobqueue backend unavailable: {name}: {reason}")
