"""The ``jobrunner`` command.

Errors jobqueue raises on purpose (bad configuration, unreachable database, missing schema)
print one line naming the problem and exit with status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import structlog

from jobqueue import migrations
from jobqueue.config import resolve_database_url
from jobqueue.db import create_engine, mask_url, unavailable
from jobqueue.errors import JobQueueError
from jobqueue.log import configure_logging

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
    return parser


def cmd_migrate(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    engine = create_engine(url)
    try:
        before = _current(engine)
        migrations.upgrade(engine, args.revision)
        after = _current(engine)
    finally:
        engine.dispose()
    log.info("schema_migrated", database=mask_url(url), from_revision=before, to_revision=after)
    print(f"jobqueue schema at revision {after} in {mask_url(url)}")
    return 0


def cmd_downgrade(args: argparse.Namespace) -> int:
    url = resolve_database_url(args.database_url)
    engine = create_engine(url)
    try:
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
        return migrations.current_revision(engine)
    except DBAPIError as error:
        raise unavailable(engine, error) from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
        code: int = args.handler(args)
        return code
    except (JobQueueError, ValueError) as error:
        print(f"jobrunner {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
