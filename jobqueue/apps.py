"""Importing the modules that register jobs (``--app``), as a worker and a supervisor do."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable

from jobqueue.errors import ConfigurationError


def import_apps(modules: Iterable[str]) -> None:
    """Import each module; the current directory is importable, as with ``python -m``."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ConfigurationError(f"cannot import the job module {name!r}: {error}") from error
