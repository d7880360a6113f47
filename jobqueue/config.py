"""Where settings come from: one resolver shared by the library and the ``jobrunner`` CLI.

The database URL is, in order: an explicit argument (``--database-url``), the
``JOBQUEUE_DATABASE_URL`` environment variable, ``database_url`` under ``[tool.jobqueue]`` in the
nearest ``pyproject.toml``, and finally ``./jobqueue.db`` made absolute (so a worker started from
another directory cannot silently open a second, empty queue). A relative SQLite path is made
absolute too: against the cwd when given directly or in the environment, against the directory of
pyproject.toml when set there. PostgreSQL workers' LISTEN URL follows the same order
(``--listen-url``, ``JOBQUEUE_LISTEN_URL``, ``listen_url``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from jobqueue.errors import ConfigurationError

ENV_DATABASE_URL = "JOBQUEUE_DATABASE_URL"
ENV_LISTEN_URL = "JOBQUEUE_LISTEN_URL"
DEFAULT_SQLITE_FILE = "jobqueue.db"


@dataclass(frozen=True)
class ProjectSettings:
    """The ``[tool.jobqueue]`` table of the nearest pyproject.toml, and where it was found."""

    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def find_project_settings(start: Path | None = None) -> ProjectSettings:
    """Read ``[tool.jobqueue]`` from the nearest pyproject.toml at or above ``start`` (the cwd)."""
    directory = (start or Path.cwd()).resolve()
    for candidate in (directory, *directory.parents):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            try:
                with pyproject.open("rb") as handle:
                    document = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise ConfigurationError(f"{pyproject} is not valid TOML: {error}") from None
            section = document.get("tool", {}).get("jobqueue", {})
            if not isinstance(section, dict):
                raise ConfigurationError(f"[tool.jobqueue] in {pyproject} must be a table")
            return ProjectSettings(values=section, path=pyproject)
    return ProjectSettings()


def resolve_database_url(explicit: str | None = None, *, start: Path | None = None) -> str:
    """Return the database URL to use, following the documented order of precedence."""
    # A relative SQLite path given directly is relative to the cwd (as SQLite itself would open
    # it); made absolute here so the worker logs, and every process opens, the same file.
    if explicit:
        return _anchor_sqlite_path(explicit, Path.cwd())
    from_env = os.environ.get(ENV_DATABASE_URL)
    if from_env:
        return _anchor_sqlite_path(from_env, Path.cwd())
    settings = find_project_settings(start)
    configured = settings.values.get("database_url")
    if configured is not None:
        if not isinstance(configured, str) or not configured:
            raise ConfigurationError(
                f"[tool.jobqueue] database_url in {settings.path} must be a non-empty string"
            )
        assert settings.path is not None
        return _anchor_sqlite_path(configured, settings.path.parent)
    return "sqlite:///" + str((start or Path.cwd()).resolve() / DEFAULT_SQLITE_FILE)


def resolve_listen_url(explicit: str | None = None, *, start: Path | None = None) -> str | None:
    """The URL for PostgreSQL workers' LISTEN connection, or None for the database URL itself:
    ``--listen-url``, then ``JOBQUEUE_LISTEN_URL``, then ``listen_url`` under
    ``[tool.jobqueue]``. Given when the database URL goes through a transaction pooler
    (PgBouncer), where LISTEN cannot work: this one reaches the server directly."""
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_LISTEN_URL)
    if from_env:
        return from_env
    settings = find_project_settings(start)
    configured = settings.values.get("listen_url")
    if configured is not None and (not isinstance(configured, str) or not configured):
        raise ConfigurationError(
            f"[tool.jobqueue] listen_url in {settings.path} must be a non-empty string"
        )
    return configured


def _anchor_sqlite_path(url: str, base: Path) -> str:
    """``url`` with a relative SQLite path made absolute against ``base`` (the directory of
    pyproject.toml for its setting, the cwd for an explicit or environment URL)."""
    try:
        parsed = make_url(url)
    except Exception:  # an unparsable URL is reported when the engine is created
        return url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str((base / database).resolve())).render_as_string(
        hide_password=False
    )
