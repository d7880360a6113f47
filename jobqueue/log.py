"""Logging for the ``jobrunner`` processes, and how it joins a host application's.

The library itself only calls ``structlog.get_logger("jobqueue.…")``. Where those events go is
decided in two steps by a ``jobrunner`` process, because the host's logging configuration is
made by its app modules (``--app``), which are imported only after the command has started:

1. :func:`configure_logging`, first thing: jobqueue's own output (JSON lines when stderr is not
   a terminal, the console renderer when it is), provisionally: no logger caches it, so a
   configuration the apps make next takes effect everywhere.
2. :func:`settle_logging`, right after the apps are imported (by the supervisor, by a worker
   started as a fresh interpreter, by the commands that import apps):

   - the apps configured structlog (the configuration is no longer jobqueue's): it is kept, and
     jobqueue's events go through it like the host's own;
   - the apps configured only stdlib logging (a handler on the root or the ``jobqueue``
     logger): jobqueue's events become records of stdlib loggers named ``jobqueue.*``, with
     the event's fields in the message text and as record attributes, tracebacks as
     ``exc_info``;
   - neither: jobqueue's own output stays, now cached.

A forked worker inherits what its supervisor settled and configures nothing. A process that
embeds the worker without calling :func:`configure_logging` keeps its configuration untouched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

ENV_LOG_LEVEL = "JOBQUEUE_LOG_LEVEL"

#: What :func:`settle_logging` decided: the process's configuration left as it is (the host's
#: structlog, or nothing of jobqueue's to settle), jobqueue's events routed into the host's
#: stdlib logging, or jobqueue's own output.
Settled = Literal["host", "host-stdlib", "jobqueue"]


@dataclass(frozen=True)
class _Provisional:
    """jobqueue's own configuration, made before the apps were imported."""

    config: tuple[object, ...]  # the structlog configuration objects, compared by identity
    level: int
    requested: str | None  # the level asked for (argument or environment), None: default
    json: bool | None


_state: dict[str, _Provisional | None] = {"provisional": None}


def configure_logging(level: str | None = None, *, json: bool | None = None) -> None:
    """Configure jobqueue's own output for a jobrunner process, until :func:`settle_logging`
    (level: ``level``, else ``JOBQUEUE_LOG_LEVEL``, else INFO)."""
    requested = level or os.environ.get(ENV_LOG_LEVEL) or None
    numeric = _level_number(requested or "INFO")
    _own_output(numeric, json, cache=False)
    _state["provisional"] = _Provisional(_current_config(), numeric, requested, json)


def settle_logging() -> Settled:
    """Keep the host's configuration if its apps made one, else make jobqueue's final; call it
    once the apps are imported (see the module's docstring)."""
    provisional = _state["provisional"]
    _state["provisional"] = None
    if provisional is None or any(
        now is not then for now, then in zip(_current_config(), provisional.config, strict=True)
    ):
        return "host"
    if logging.getLogger("jobqueue").hasHandlers():
        _into_stdlib(provisional.requested)
        return "host-stdlib"
    _own_output(provisional.level, provisional.json, cache=True)
    return "jobqueue"


def _level_number(name: str) -> int:
    numeric = logging.getLevelNamesMapping().get(name.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {name.upper()!r}; use DEBUG, INFO, WARNING or ERROR")
    return numeric


def _current_config() -> tuple[object, ...]:
    config = structlog.get_config()
    return tuple(config[key] for key in ("processors", "wrapper_class", "logger_factory"))


# -- jobqueue's own output ---------------------------------------------------------------------


def _own_output(level: int, as_json: bool | None, *, cache: bool) -> None:
    if as_json is None:
        as_json = not sys.stderr.isatty()
    tail: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if as_json
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_NamedWriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=cache,
    )


class _NamedWriteLogger(structlog.WriteLogger):
    """A ``WriteLogger`` that knows the name it was asked for (``get_logger("jobqueue.worker")``).

    One write() per line (message and newline together): worker processes share the
    supervisor's stderr, and two writes per line let their lines interleave.
    """

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self._file, str(args[0]) if args else None)


def _add_logger_name(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


# -- into the host's stdlib logging ------------------------------------------------------------


def _into_stdlib(requested: str | None) -> None:
    """Route structlog events to stdlib loggers of the same name (``jobqueue.worker``).

    The host's levels decide, except that a level asked for explicitly (``--log-level``,
    ``JOBQUEUE_LOG_LEVEL``) is set on the ``jobqueue`` logger when the host left it unset.
    """
    if requested is not None:
        ours = logging.getLogger("jobqueue")
        if ours.level == logging.NOTSET:
            ours.setLevel(_level_number(requested))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            _render_for_stdlib,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


#: Attributes every LogRecord has, which ``extra`` may not overwrite: an event field named like
#: one goes into the record with a trailing underscore (``name_``).
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}
_PLAIN = re.compile(r'[^\s"=\\]+')


def _render_for_stdlib(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> dict[str, Any]:
    """The keyword arguments of the stdlib call: ``msg`` is ``event key=value …`` for any
    formatter; the fields are also record attributes (``extra``, for structured handlers and
    structlog's ``ExtraAdder``); ``exc_info`` and ``stack_info`` go to the record as such."""
    kwargs = {key: event_dict.pop(key) for key in ("exc_info", "stack_info") if key in event_dict}
    event = str(event_dict.pop("event", ""))
    text = " ".join([event, *(f"{key}={_logfmt(value)}" for key, value in event_dict.items())])
    extra = {
        (f"{key}_" if key in _RECORD_ATTRIBUTES else key): value
        for key, value in event_dict.items()
    }
    return {"msg": text, "extra": {"event": event, **extra}, **kwargs}


def _logfmt(value: object) -> str:
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))
