"""The ``jobrunner`` command.

Errors jobqueue raises on purpose (bad configuration, unreachable database, missing schema)
print one line naming the problem and exit with status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import structlog

from jobqueue.config import resolve_database_url
from jobqueue.db import create_engine, mask_url
from jobqueue.db_errors import operational_error
from jobqueue.errors import JobQueueError
from jobqueue.log import ENV_LOG_LEVEL, configure_logging

log = structlog.get_logger("jobqueue.cli")


def _add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database URL (default: $JOBQUEUE_DATABASE_URL, [tool.jobqueue] database_url in "
        "pyproject.toml, then ./jobqueue.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobrunner", description="Run and manage jobqueue background jobs."
    )
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="create or upgrade the jobqueue tables")
    _add_database_url(migrate)
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(handler=cmd_migrate)

    downgrade = commands.add_parser(
        "downgrade", help="downgrade the jobqueue tables (base drops them, with every job)"
    )
    _add_database_url(downgrade)
    downgrade.add_argument("--revision", required=True, help="target revision, or base")
    downgrade.set_defaults(handler=cmd_downgrade)

    from jobqueue.cli.admin import add_admin_parsers
    from jobqueue.cli.batches import add_batches_parser
    from jobqueue.cli.dashboard import add_dashboard_parser
    from jobqueue.cli.jobs import add_jobs_parser
    from jobqueue.cli.work import add_work_parser

    add_work_parser(commands)
    add_jobs_parser(commands, _add_database_url)
    add_batches_parser(commands, _add_database_url)
    add_admin_parsers(commands, _add_database_url)
    add_dashboard_parser(commands, _add_database_url)
    return parser


def cmd_migrate(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    engine = create_engine(url)
    try:
        before = _current(engine)
        from jobqueue import migrations  # alembic loads only when needed

        migrations.upgrade(engine, args.revision)
        after = _current(engine)
    finally:
        engine.dispose()
    # The printed line is the command's answer; the event is for logs that ask for DEBUG.
    log.debug("schema_migrated", database=mask_url(url), from_revision=before, to_revision=after)
    print(f"jobqueue schema at revision {after} in {mask_url(url)}")
    return 0


def cmd_downgrade(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    engine = create_engine(url)
    try:
        from jobqueue import migrations  # alembic loads only when needed

        migrations.downgrade(engine, args.revision)
        after = _current(engine)
    finally:
        engine.dispose()
    print(f"jobqueue schema at revision {after or 'base'} in {mask_url(url)}")
    return 0


def _current(engine: object) -> str | None:
    from sqlalchemy import Engine
    from sqlalchemy.exc import DBAPIError

    assert isinstance(engine, Engine)
    try:
        from jobqueue import migrations  # alembic loads only when needed

        return migrations.current_revision(engine)
    except DBAPIError as error:
        explained = operational_error(engine, error)
        if explained is error:
            raise  # reported by main() as one line
        raise explained from error


def _database_error(args: argparse.Namespace, error: Exception) -> str:
    """One line for a database error a command let escape: the driver's first line, or what
    :func:`jobqueue.db_errors.operational_error` makes of it, naming the masked URL."""
    from sqlalchemy.exc import DBAPIError

    assert isinstance(error, DBAPIError)
    lines = str(error.orig if error.orig is not None else error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    try:
        engine = create_engine(resolve_database_url(getattr(args, "database_url", None)))
    except (JobQueueError, ValueError):
        return reason
    try:
        explained = operational_error(engine, error)  # nothing connects: it reads the URL
    finally:
        engine.dispose()
    if explained is not error:
        return (str(explained).strip().splitlines() or [reason])[0]
    return f"{reason} (database {mask_url(engine.url)})"


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import DBAPIError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Operator commands print their results; their log events matter only as warnings.
        quiet = (
            "WARNING" if args.command not in ("work", "migrate", "downgrade", "dashboard") else None
        )
        # Provisional: the commands that import apps then keep a configuration the apps made
        # (jobqueue.log.settle_logging).
        configure_logging(args.log_level or os.environ.get(ENV_LOG_LEVEL) or quiet)
        code: int = args.handler(args)
        return code
    except (JobQueueError, ValueError) as error:
        print(f"jobrunner {args.command}: error: {error}", file=sys.stderr)
        return 1
    except DBAPIError as error:  # not a traceback: one line naming the database's complaint
        print(f"jobrunner {args.command}: error: {_database_error(args, error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run() -> NoReturn:
    """The ``jobrunner`` command: :func:`main`, then a quick exit.

    Tearing down every module at interpreter exit took about 0.1 s with SQLAlchemy loaded, a
    twentieth of a 20,000-job ``work --burst``; nothing in it matters to a process that is
    leaving. Exit handlers still run and the output is flushed; threads still running are
    daemons (the worker's own) or the user's to have joined.
    """
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
