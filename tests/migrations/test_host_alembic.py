"""An application with its own models and alembic history, in the database jobqueue uses.

The app's autogenerate sees only the app's tables when its env.py passes
``include_name=jobqueue.migrations.include_name``; without it the same command writes a
migration that drops the queue (#14). Run on every backend, through alembic's command API with
the app's own alembic.ini, as ``alembic revision --autogenerate`` would run it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import Script
from sqlalchemy import Engine, inspect, text

from alembic import command
from jobqueue import JobQueue, cli
from jobqueue.db import create_engine
from jobqueue.migrations import include_name
from jobqueue.schema import SCHEMA_REVISION, VERSION_TABLE, metadata

from backends import TestDatabase

HOST_MODELS = '''\
"""The host app's own tables."""

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(200), nullable=False, unique=True),
)

# Starts like jobqueue's tables: the helper must match whole names, not a prefix.
job_postings = Table(
    "job_postings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Index("ix_job_postings_title", "title"),
)
'''

HOST_ENV = '''\
"""The host app's alembic env.py, as README.md shows it."""

from alembic import context
from sqlalchemy import create_engine

import jobqueue.migrations
from hostapp.models import metadata

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"))
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            {include_name}
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
'''
WITH_HELPER = "include_name=jobqueue.migrations.include_name,"

OUR_TABLES = sorted(table.name for table in metadata.sorted_tables)
OUR_INDEXES = sorted(str(index.name) for table in metadata.sorted_tables for index in table.indexes)


@pytest.fixture
def host_app(
    fresh_database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Config]:
    """A host project (``alembic init`` plus its models) in a database jobqueue migrated."""
    assert cli.main(["migrate", "--database-url", fresh_database.url]) == 0
    project = tmp_path / "host"
    (project / "hostapp").mkdir(parents=True)
    (project / "hostapp" / "__init__.py").write_text("")
    (project / "hostapp" / "models.py").write_text(HOST_MODELS)
    url = fresh_database.url.replace("%", "%%")
    (project / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n"
        "prepend_sys_path = %(here)s\npath_separator = os\n"
        f"sqlalchemy.url = {url}\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))  # alembic prepends the project to it
    config = Config(str(project / "alembic.ini"))
    command.init(config, str(project / "migrations"))
    yield config
    for module in ("hostapp.models", "hostapp"):
        sys.modules.pop(module, None)


def _autogenerate(config: Config, include_name: str, message: str) -> tuple[Script, str]:
    """``alembic revision --autogenerate`` with env.py passing ``include_name`` or not."""
    env = Path(config.get_main_option("script_location") or "") / "env.py"
    env.write_text(HOST_ENV.format(include_name=include_name))
    script = command.revision(config, message, autogenerate=True)
    assert isinstance(script, Script)
    return script, Path(script.path).read_text()


def _upgrade_ops(migration: str, op: str) -> set[str]:
    """The names an ``op.<op>(...)`` call of the migration's upgrade() names first."""
    upgrade = migration.split("def downgrade")[0]
    return set(re.findall(rf"op\.{op}\((?:op\.f\()?'([^']+)'", upgrade))


def test_without_the_helper_autogenerate_would_drop_the_queue(host_app: Config) -> None:
    _script, migration = _autogenerate(host_app, "", "unguarded")
    assert _upgrade_ops(migration, "drop_table") == {*OUR_TABLES, VERSION_TABLE}
    assert _upgrade_ops(migration, "drop_index") == set(OUR_INDEXES)


def test_with_the_helper_autogenerate_sees_only_the_apps_tables(
    host_app: Config, fresh_database: TestDatabase
) -> None:
    script, migration = _autogenerate(host_app, WITH_HELPER, "host tables")
    assert _upgrade_ops(migration, "create_table") == {"customers", "job_postings"}
    assert _upgrade_ops(migration, "create_index") == {"ix_job_postings_title"}
    assert "drop_" not in migration.split("def downgrade")[0]
    for name in [*OUR_TABLES, *OUR_INDEXES, VERSION_TABLE]:
        assert name not in migration, name

    command.upgrade(host_app, "head")
    command.check(host_app)  # the app's models and its database now agree, jobqueue aside
    assert cli.main(["migrate", "--database-url", fresh_database.url]) == 0  # a no-op

    engine = create_engine(fresh_database.url)
    try:
        assert set(OUR_TABLES) | {"customers", "job_postings"} <= set(
            inspect(engine).get_table_names()
        )
        assert _versions(engine) == {
            VERSION_TABLE: SCHEMA_REVISION,
            "alembic_version": script.revision,
        }
    finally:
        engine.dispose()
    with JobQueue(fresh_database.url) as queue:  # and the queue still works
        job = queue.get_job(queue.enqueue("host.send_invoice", 7).id)
    assert job is not None
    assert (job.name, job.args, job.status) == ("host.send_invoice", [7], "pending")


def _versions(engine: Engine) -> dict[str, str]:
    """Each alembic history's revision: jobqueue's and the app's, side by side."""
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT version_num FROM {table}")).scalar_one()
            for table in (VERSION_TABLE, "alembic_version")
        }


def test_the_helper_hides_jobqueue_names_only_by_their_whole_name() -> None:
    """The names alembic passes, as its reflection passes them (schema given or not)."""
    assert not include_name("job_queue", "table", {"schema_name": None})
    assert not include_name(VERSION_TABLE, "table", {"schema_name": "public"})
    assert not include_name("ix_job_queue_claim", "index", {"table_name": "job_queue"})
    assert not include_name("id", "column", {"table_name": "job_processes", "schema_name": None})
    assert include_name("job_postings", "table", {"schema_name": None})
    assert include_name("alembic_version", "table", {})
    assert include_name("ix_job_postings_title", "index", {"table_name": "job_postings"})
    assert include_name(None, "schema", {})
