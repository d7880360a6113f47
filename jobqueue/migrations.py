"""Running the alembic migrations from code, for ``jobrunner migrate`` and the tests.

The scripts live in the top-level ``alembic/`` folder of the repository and ship inside the
wheel as ``jobqueue/_alembic``; the config is built here so that no ``alembic.ini`` is needed
after ``pip install``. The version table is ``jobqueue_alembic_version``, so an app's own
alembic history in the same database is never touched.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from alembic import command
from jobqueue.errors import ConfigurationError

_PACKAGE_DIR = Path(__file__).resolve().parent


def script_location() -> Path:
    """The migration scripts: inside the installed package, or the repository's ``alembic/``."""
    for candidate in (_PACKAGE_DIR / "_alembic", _PACKAGE_DIR.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigurationError(
        "the jobqueue migration scripts are missing from the installation "
        f"(looked in {_PACKAGE_DIR / '_alembic'}); reinstall jobqueue"
    )


def alembic_config(engine: Engine) -> Config:
    """An alembic config that runs our scripts on ``engine`` (passed to env.py in memory)."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_bare_config()).get_current_head()
    assert head is not None
    return head


def _bare_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the jobqueue tables (on SQLite, alembic/env.py also switches the file
    to WAL, for this path and for developers' `alembic upgrade` alike)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from jobqueue.database import read_schema_revision

    with engine.connect() as connection, connection.begin():
        return read_schema_revision(connection)
