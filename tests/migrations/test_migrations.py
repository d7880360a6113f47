"""The migrations create exactly the schema module's tables, on every backend, and undo them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from jobqueue import migrations
from jobqueue.db import create_engine
from jobqueue.schema import SCHEMA_REVISION, VERSION_TABLE, metadata

from backends import TestDatabase


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "version_table": VERSION_TABLE,
                "include_name": lambda name, type_, _parents: (
                    type_ != "table" or name in metadata.tables
                ),
            },
        )
        return list(compare_metadata(context, metadata))


def test_schema_revision_constant_is_the_head() -> None:
    assert migrations.head_revision() == SCHEMA_REVISION


def test_upgrade_yields_the_metadata_and_downgrade_removes_it(fresh_database: TestDatabase) -> None:
    engine = create_engine(fresh_database.url)
    try:
        migrations.upgrade(engine)
        assert migrations.current_revision(engine) == SCHEMA_REVISION
        assert _differences(engine) == []
        assert {"job_queue", "job_processes"} <= set(inspect(engine).get_table_names())
        migrations.downgrade(engine, "base")
        remaining = set(inspect(engine).get_table_names())
        assert not remaining & {"job_queue", "job_processes"}
        assert migrations.current_revision(engine) is None
        migrations.upgrade(engine)  # and back up again
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_the_applications_own_alembic_history_is_untouched(fresh_database: TestDatabase) -> None:
    engine = create_engine(fresh_database.url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            )
            connection.execute(text("INSERT INTO alembic_version VALUES ('app_rev_42')"))
        migrations.upgrade(engine)
        migrations.downgrade(engine, "base")
        migrations.upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            ours = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        assert [tuple(r) for r in rows] == [("app_rev_42",)]
        assert [tuple(r) for r in ours] == [(SCHEMA_REVISION,)]
    finally:
        engine.dispose()


def test_migrating_twice_is_a_no_op(fresh_database: TestDatabase) -> None:
    engine = create_engine(fresh_database.url)
    try:
        migrations.upgrade(engine)
        migrations.upgrade(engine)
        assert migrations.current_revision(engine) == SCHEMA_REVISION
    finally:
        engine.dispose()
