"""The ``jobrunner`` command: ``main`` builds the parser and dispatches; ``work``, ``admin``
and ``dashboard`` add their subcommands."""

from jobqueue.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
