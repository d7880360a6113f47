"""Running the alembic migrations from code, for ``jobrunner migrate`` and the tests.

The scripts live in the top-level ``alembic/`` folder of the repository and ship inside the
wheel as ``jobqueue/_alembic``; the config is built here so that no ``alembic.ini`` is needed
after ``pip install``. The version table is ``jobqueue_alembic_version``, so an app's own
alembic history in the same database is never touched. The other direction, an app's own
autogenerate leaving jobqueue's tables alone, is :func:`include_name`, for the app's env.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from alembic import command
from jobqueue.errors import ConfigurationError
from jobqueue.schema import VERSION_TABLE, metadata

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

_PACKAGE_DIR = Path(__file__).resolve().parent

#: Every table jobqueue owns, read from the schema module so a table added there is covered
#: without anyone remembering to list it here.
_OUR_TABLES = frozenset({table.name for table in metadata.tables.values()} | {VERSION_TABLE})


def include_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Hide jobqueue's tables from an application's own alembic autogenerate.

    An app that keeps its own alembic history in the same database would otherwise see
    jobqueue's tables (and their indexes, and ``jobqueue_alembic_version``) as tables its
    models lack, and autogenerate would drop the queue. Pass this as ``include_name=`` to
    ``context.configure`` in the app's env.py. It has alembic's ``include_name`` signature;
    alembic calls it for every name it reflects: a table with ``type_ == "table"``, an index,
    constraint or column with the table in ``parent_names["table_name"]``. Names are matched
    exactly (an app's ``job_postings`` table stays visible) and in any schema, since
    ``include_schemas=True`` may reflect jobqueue's tables under an explicit schema name.
    """
    if type_ == "table":
        return name not in _OUR_TABLES
    return parent_names.get("table_name") not in _OUR_TABLES


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
