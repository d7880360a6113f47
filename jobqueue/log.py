"""structlog set-up for the ``jobrunner`` processes.

JSON lines when output is not a terminal (what log shippers read), the console renderer when it
is. The library itself only calls ``structlog.get_logger``; an application embedding jobqueue
keeps its own logging configuration.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

ENV_LOG_LEVEL = "JOBQUEUE_LOG_LEVEL"


def configure_logging(level: str | None = None, *, json: bool | None = None) -> None:
    """Configure structlog for a jobrunner process (level: ``JOBQUEUE_LOG_LEVEL``, else INFO)."""
    name = (level or os.environ.get(ENV_LOG_LEVEL) or "INFO").upper()
    numeric = logging.getLevelNamesMapping().get(name)
    if numeric is None:
        raise ValueError(f"unknown log level {name!r}; use DEBUG, INFO, WARNING or ERROR")
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write() per line (message and newline together): worker processes share the
        # supervisor's stderr, and two writes per line let their lines interleave.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
