"""The migrations create exactly the schema module's tables, on every backend, and undo them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CHAR, Engine, inspect, text

from jobqueue import cli, db, migrations
from jobqueue.db import create_engine
from jobqueue.schema import SCHEMA_REVISION, VERSION_TABLE, metadata

from backends import TestDatabase

REPO = Path(__file__).resolve().parents[2]


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
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


@pytest.mark.parametrize("backend_name", ["mysql"])
def test_migrate_refuses_a_server_too_old_for_skip_locked(
    fresh_database: TestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = create_engine(fresh_database.url)
    try:
        with engine.connect():  # the real server (MariaDB 10.11 here) is new enough
            pass
    finally:
        engine.dispose()
    monkeypatch.setattr(db, "_MIN_MARIADB", (99, 0))
    monkeypatch.setattr(db, "_MIN_MYSQL", (99, 0, 0))
    assert cli.main(["migrate", "--database-url", fresh_database.url]) == 1
    error = capsys.readouterr().err
    assert "too old" in error and "SKIP LOCKED" in error
    assert "Traceback" not in error
    inspector_engine = create_engine(fresh_database.url)
    monkeypatch.undo()
    try:
        assert "job_queue" not in inspect(inspector_engine).get_table_names()
    finally:
        inspector_engine.dispose()


def test_a_database_error_in_a_command_is_one_line_not_a_traceback(
    fresh_database: TestDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(fresh_database.url)
    try:
        with engine.begin() as connection:  # someone else's table in the way
            connection.execute(text("CREATE TABLE job_queue (other INTEGER)"))
    finally:
        engine.dispose()
    assert cli.main(["migrate", "--database-url", fresh_database.url]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("jobrunner migrate: error: ")
    assert "job_queue" in lines[-1] and "already exists" in lines[-1]
    assert not any("Traceback" in line for line in lines)


@pytest.mark.parametrize("backend_name", ["mysql"])
def test_ids_are_char_26_on_mysql(fresh_database: TestDatabase) -> None:
    engine = create_engine(fresh_database.url)
    try:
        migrations.upgrade(engine)
        inspector = inspect(engine)
        for table in ("job_queue", "job_processes"):
            column = next(c for c in inspector.get_columns(table) if c["name"] == "id")
            assert isinstance(column["type"], CHAR), (table, column["type"])
            assert column["type"].length == 26
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_alembic_upgrade_from_the_repository_switches_sqlite_to_wal(tmp_path: Path) -> None:
    """Developers' ``alembic upgrade head`` (alembic.ini at the repository root) gets WAL too."""
    database = tmp_path / "dev.db"
    environment = {
        **os.environ,
        "JOBQUEUE_DATABASE_URL": f"sqlite:///{database}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    engine = create_engine(f"sqlite:///{database}")
    try:
        assert migrations.current_revision(engine) == SCHEMA_REVISION
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_migrate_says_its_result_once(
    fresh_database: TestDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate", "--database-url", fresh_database.url]) == 0
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert both.count(SCHEMA_REVISION) == 1, both
    assert captured.out.startswith(f"jobqueue schema at revision {SCHEMA_REVISION} in ")
