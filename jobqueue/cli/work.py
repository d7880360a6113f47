"""``jobrunner work``: options, ``[tool.jobqueue]`` settings, and starting the supervisor.

Worker groups can be declared in pyproject.toml::

    [tool.jobqueue]
    apps = ["myapp.jobs"]

    [[tool.jobqueue.workers]]
    queues = ["mail", "default"]
    processes = 2
    threads = 8

Command-line ``--queues/--processes/--threads`` replace the declared groups with one group.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

from jobqueue.apps import import_apps
from jobqueue.cli.common import parse_duration
from jobqueue.config import find_project_settings, resolve_database_url, resolve_listen_url
from jobqueue.errors import ConfigurationError
from jobqueue.log import settle_logging
from jobqueue.recurring import tasks_from_settings
from jobqueue.registry import registry
from jobqueue.runtime.supervisor import Supervisor, SupervisorSettings
from jobqueue.settings import DEFAULT_THREADS, WorkerSettings, timing_from_environment

#: The app ``--django-settings`` adds (jobqueue.contrib.django.boot).
DJANGO_APP = "jobqueue.contrib.django.boot"


def add_work_parser(commands: Any) -> None:
    """Longer than usual because it is the flat list of ``jobrunner work``'s options, read
    top to bottom like its ``--help``."""
    work = commands.add_parser("work", help="run workers: claim due jobs and run them")
    work.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="module that defines jobs (repeatable; default: [tool.jobqueue] apps)",
    )
    work.add_argument("--database-url", metavar="URL", help="database URL")
    work.add_argument(
        "--listen-url",
        metavar="URL",
        help="PostgreSQL: a direct connection for LISTEN/NOTIFY when the database URL goes "
        "through PgBouncer in transaction mode (default: the database URL; env "
        "JOBQUEUE_LISTEN_URL)",
    )
    work.add_argument(
        "--django-settings",
        metavar="MODULE",
        help="run Django tasks: set Django up with these settings in every worker process "
        "(default database: the jobqueue TASKS backend's; needs 'jobqueue[django]')",
    )
    work.add_argument("--queues", help="comma-separated queues in claim order; * = all (default)")
    work.add_argument("--processes", type=int, help="worker processes (default 1)")
    work.add_argument(
        "--threads", type=int, help=f"threads per process (default {DEFAULT_THREADS})"
    )
    work.add_argument(
        "--prefetch",
        type=int,
        metavar="N",
        help="jobs claimed beyond the threads, so a batch is ready as threads free up "
        "(default: automatic, about 50 ms of work by the average job time, at least as many "
        "as threads; 0 claims only for idle threads)",
    )
    work.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="S",
        help="seconds running jobs get to finish on SIGTERM (default 10)",
    )
    work.add_argument(
        "--burst", action="store_true", help="exit 0 once nothing is running and no job is due"
    )
    work.add_argument(
        "--startup-timeout",
        type=float,
        metavar="S",
        help="give up after S seconds if the database cannot be reached at start "
        "(default: wait for it, as for a database starting alongside)",
    )
    work.add_argument(
        "--allow-no-jobs",
        action="store_true",
        help="start even though no job is registered (every job claimed would fail as unknown)",
    )
    work.add_argument(
        "--max-jobs", type=int, metavar="N", help="recycle a worker process after N jobs"
    )
    work.add_argument(
        "--max-memory-mb",
        type=float,
        metavar="M",
        help="recycle a worker process above M MB resident memory",
    )
    work.add_argument(
        "--poll-interval", type=float, metavar="S", help="longest idle poll interval (default 1)"
    )
    work.add_argument("--heartbeat-interval", type=float, metavar="S", help="default 5")
    work.add_argument(
        "--dead-threshold",
        type=float,
        metavar="S",
        help="a process silent this long is dead (default 30, >= 5x heartbeat)",
    )
    work.add_argument(
        "--retention",
        type=parse_duration,
        metavar="DURATION",
        help="keep succeeded jobs this long, then prune them (default 1d; 0s = at once)",
    )
    work.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on this port from the supervisor (needs "
        "'jobqueue[metrics]')",
    )
    work.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address for --metrics-port (default 127.0.0.1)",
    )
    work.add_argument("--sqlite-synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    work.add_argument(
        "--sqlite-busy-timeout",
        type=float,
        metavar="S",
        help="seconds a SQLite write waits for another writer's lock before backing off "
        "(default 10)",
    )
    work.set_defaults(handler=cmd_work)


def _queue_list(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(q, str) for q in items):
        raise ConfigurationError(f"{where}: queues must be a list of names or 'a,b'")
    queues = [q.strip() for q in items if q.strip()]
    if not queues:
        # An unset shell variable ($QUEUES) must not quietly mean every queue.
        raise ConfigurationError(f"{where}: no queue named; use '*' for every queue")
    return None if "*" in queues else queues


def build_settings(args: argparse.Namespace) -> SupervisorSettings:
    project = find_project_settings()
    apps = list(args.app) or list(project.values.get("apps", []))
    database_url = resolve_database_url(args.database_url)
    timing: dict[str, Any] = dict(timing_from_environment())
    for key in (
        "heartbeat_interval",
        "dead_threshold",
        "poll_interval",
        "shutdown_timeout",
        "sqlite_busy_timeout",
    ):
        if getattr(args, key) is not None:
            timing[key] = getattr(args, key)
    base = WorkerSettings(
        database_url=database_url,
        listen_url=resolve_listen_url(args.listen_url),
        apps=apps,
        burst=args.burst,
        max_jobs=args.max_jobs,
        max_memory_mb=args.max_memory_mb,
        prefetch=args.prefetch,
        sqlite_synchronous=args.sqlite_synchronous,
        log_level=args.log_level,
        **timing,
    )
    groups = _groups(args, base, project.values.get("workers"))
    if any(count < 1 for _, count in groups):
        raise ConfigurationError("--processes must be at least 1")
    return SupervisorSettings(
        groups=groups,
        database_url=database_url,
        heartbeat_interval=timing["heartbeat_interval"],
        dead_threshold=timing["dead_threshold"],
        shutdown_timeout=timing["shutdown_timeout"],
        burst=args.burst,
        retention=_retention(args, project.values),
        recurring=tasks_from_settings(project.values),
        startup_timeout=args.startup_timeout,
    )


def _groups(
    args: argparse.Namespace, base: WorkerSettings, declared: Any
) -> list[tuple[WorkerSettings, int]]:
    """(settings, processes) per worker group: from the command line, or else from
    ``[[tool.jobqueue.workers]]``."""
    cli_given = (args.queues, args.processes, args.threads)
    if not declared or any(value is not None for value in cli_given):
        settings = WorkerSettings(
            **{
                **base.__dict__,
                "queues": _queue_list(args.queues, "--queues"),
                "threads": args.threads if args.threads is not None else DEFAULT_THREADS,
            }
        )
        return [(settings.validate(), args.processes if args.processes is not None else 1)]
    if not isinstance(declared, list):
        raise ConfigurationError("[tool.jobqueue] workers must be an array of tables")
    groups = []
    for index, group in enumerate(declared):
        where = f"[[tool.jobqueue.workers]] #{index + 1}"
        settings = WorkerSettings(
            **{
                **base.__dict__,
                "queues": _queue_list(group.get("queues"), where),
                "threads": int(group.get("threads", DEFAULT_THREADS)),
            }
        )
        groups.append((settings.validate(), int(group.get("processes", 1))))
    return groups


def _retention(args: argparse.Namespace, project: dict[str, Any]) -> timedelta:
    if args.retention is not None:
        return args.retention  # type: ignore[no-any-return]
    configured = project.get("retention")
    if configured is None:
        return timedelta(days=1)
    try:
        return parse_duration(str(configured))
    except argparse.ArgumentTypeError as error:
        raise ConfigurationError(f"[tool.jobqueue] retention: {error}") from None


def cmd_work(args: argparse.Namespace) -> int:
    if args.django_settings:
        # The Django integration is an app like any other: importing it sets Django up (here,
        # and in each worker process) and names its tasks backend's database, unless given.
        os.environ["DJANGO_SETTINGS_MODULE"] = args.django_settings
        args.app = [DJANGO_APP, *args.app]
        import_apps([DJANGO_APP])
    settings = build_settings(args)
    # Import the apps here too, so a typo fails now with one clear line, not in every child.
    import_apps(settings.groups[0][0].apps)
    # The apps may have configured logging (the host's structlog or stdlib): keep theirs, or
    # make jobqueue's provisional one final. Forked workers inherit what is decided here.
    settle_logging()
    if not registry.names() and not args.allow_no_jobs:
        # Such a worker claims every due job only to fail it as unknown, attempt after attempt.
        raise ConfigurationError(
            "no job is registered: name the modules that define your jobs with --app MODULE "
            "(or apps = [...] under [tool.jobqueue] in pyproject.toml); --allow-no-jobs starts "
            "anyway"
        )
    if args.metrics_port is not None:
        _serve_metrics(settings.database_url, args.metrics_host, args.metrics_port)
    return Supervisor(settings).run()


def _serve_metrics(database_url: str, host: str, port: int) -> None:
    """Start /metrics beside the supervisor: a daemon thread reading the database per scrape."""
    try:
        from jobqueue import metrics
    except ImportError:
        raise ConfigurationError(
            "--metrics-port needs prometheus-client: run `pip install 'jobqueue[metrics]'`"
        ) from None
    from jobqueue.queue import JobQueue

    metrics.serve(JobQueue(database_url, pool_size=2), port, host)
