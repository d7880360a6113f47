"""``jobrunner queues``, ``processes``, ``stats``, ``recurring`` and ``prune``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from jobqueue.admin import Stats
from jobqueue.cli.common import admin_for, iso, parse_duration, table
from jobqueue.queue import JobQueue
from jobqueue.schema import TERMINAL_STATUSES
from jobqueue.store.purge import CLEARABLE


def add_admin_parsers(commands: Any, add_database_url: Any) -> None:
    """``jobrunner queues|processes|stats|recurring|prune``."""
    queues = commands.add_parser(
        "queues", help="per-queue counts and latency; pause, resume or clear one"
    )
    add_database_url(queues)
    queues.add_argument("--json", action="store_true")
    queues.set_defaults(handler=cmd_queues)
    queue_actions = queues.add_subparsers(dest="action", metavar="ACTION")
    for verb in ("pause", "resume"):
        sub = queue_actions.add_parser(verb, help=f"{verb} claiming from a queue")
        if verb == "pause":
            sub.add_argument(
                "--ahead", action="store_true", help="pause a queue that has no job yet"
            )
        # SUPPRESS: a value given before the action (on `queues`) is not reset to None.
        sub.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)
        sub.add_argument("queue")
        sub.set_defaults(handler=cmd_queue_pause if verb == "pause" else cmd_queue_resume)

    _add_clear_parser(queue_actions)

    procs = commands.add_parser("processes", help="live supervisors and workers")
    add_database_url(procs)
    procs.add_argument("--json", action="store_true")
    procs.set_defaults(handler=cmd_processes)

    stats = commands.add_parser("stats", help="throughput and failure rate")
    add_database_url(stats)
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=cmd_stats)

    recurring = commands.add_parser("recurring", help="recurring tasks and their next run")
    add_database_url(recurring)
    recurring.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="modules defining @job(cron=...) (default: [tool.jobqueue] apps)",
    )
    recurring.add_argument("--json", action="store_true")
    recurring.set_defaults(handler=cmd_recurring)

    prune = commands.add_parser("prune", help="delete finished jobs older than a duration")
    add_database_url(prune)
    prune.add_argument("--status", required=True, choices=list(TERMINAL_STATUSES))
    prune.add_argument("--older-than", required=True, type=parse_duration, metavar="DURATION")
    prune.set_defaults(handler=cmd_prune)


def _add_clear_parser(queue_actions: Any) -> None:
    """``jobrunner queues clear NAME [--status ...] [--yes]``."""
    clear = queue_actions.add_parser(
        "clear", help="discard a queue's waiting jobs (pending, scheduled, blocked)"
    )
    clear.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)
    clear.add_argument("queue")
    clear.add_argument(
        "--status",
        default=",".join(CLEARABLE),
        help="comma-separated: pending (due now), scheduled (due later), blocked; default all",
    )
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    clear.set_defaults(handler=cmd_queue_clear)


def cmd_queues(args: argparse.Namespace) -> int:
    summaries = admin_for(args).queues()
    if args.json:
        print(json.dumps([asdict(s) for s in summaries], indent=2))
        return 0
    print(
        table(
            [
                (
                    s.queue,
                    s.pending,
                    s.due,
                    s.running,
                    s.failed,
                    "-" if s.latency_seconds is None else f"{s.latency_seconds:.1f}s",
                    "paused" if s.paused else "",
                )
                for s in summaries
            ],
            ["QUEUE", "PENDING", "DUE", "RUNNING", "FAILED", "LATENCY", "STATE"],
        )
    )
    return 0


def cmd_queue_pause(args: argparse.Namespace) -> int:
    admin = admin_for(args)
    if not args.ahead and not JobQueue(args.database_url).count_jobs(queue=args.queue):
        # Most likely a typo, which would otherwise pause nothing and say it did.
        raise ValueError(
            f"queue {args.queue!r} has no jobs (a typo?); pass --ahead to pause it before any "
            "arrive"
        )
    changed = admin.pause(args.queue)
    print(f"queue {args.queue!r} {'paused' if changed else 'was already paused'}")
    return 0


def cmd_queue_clear(args: argparse.Namespace) -> int:
    statuses = [status.strip() for status in args.status.split(",") if status.strip()]
    admin = admin_for(args)
    if not args.yes:
        if not sys.stdin.isatty():
            raise ValueError("clearing a queue cannot be undone: pass --yes to confirm")
        answer = input(f"discard the {'/'.join(statuses)} jobs of queue {args.queue!r}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing cleared")
            return 1
    count = admin.clear_queue(args.queue, statuses=statuses)
    print(f"cleared {count} job(s) from queue {args.queue!r}")
    return 0


def cmd_queue_resume(args: argparse.Namespace) -> int:
    changed = admin_for(args).resume(args.queue)
    print(f"queue {args.queue!r} {'resumed' if changed else 'was not paused'}")
    return 0


def cmd_processes(args: argparse.Namespace) -> int:
    rows = admin_for(args).processes()
    now = datetime.now(UTC)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        **asdict(p),
                        "started_at": iso(p.started_at),
                        "last_heartbeat_at": iso(p.last_heartbeat_at),
                    }
                    for p in rows
                ],
                indent=2,
            )
        )
        return 0
    print(
        table(
            [
                (
                    p.id,
                    p.kind,
                    p.hostname,
                    p.pid,
                    p.queues or "*",
                    f"{(now - p.last_heartbeat_at).total_seconds():.1f}s ago",
                )
                for p in rows
            ],
            ["ID", "KIND", "HOST", "PID", "QUEUES", "HEARTBEAT"],
        )
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    admin = admin_for(args)
    windows = {"5m": admin.stats(minutes=5), "1h": admin.stats(minutes=60)}
    if args.json:
        print(
            json.dumps(
                {
                    k: {
                        **asdict(v),
                        "processed": v.processed,
                        "per_second": v.per_second,
                        "failure_rate": v.failure_rate,
                    }
                    for k, v in windows.items()
                },
                indent=2,
            )
        )
        return 0
    _print_stats(windows)
    return 0


def _print_stats(windows: dict[str, Stats]) -> None:
    print(
        table(
            [
                (
                    window,
                    s.processed,
                    s.succeeded,
                    s.retried,
                    s.failed,
                    s.discarded,
                    s.expired,
                    f"{s.per_second:.2f}",
                    f"{s.failure_rate:.1%}",
                )
                for window, s in windows.items()
            ],
            [
                "WINDOW",
                "PROCESSED",
                "SUCCEEDED",
                "RETRIED",
                "FAILED",
                "CANCELLED BY JOB",
                "EXPIRED",
                "JOBS/S",
                "FAILED ATTEMPTS",
            ],
        )
    )
    # What the columns count, since two of them are easy to misread.
    print(
        "PROCESSED = succeeded + failed + cancelled by job + expired; FAILED ATTEMPTS = "
        "retried and failed attempts among all attempts; CANCELLED BY JOB = discard_on or "
        "JobCancelled (an operator's `jobs discard` deletes jobs and is not counted)"
    )


def cmd_recurring(args: argparse.Namespace) -> int:
    from jobqueue.apps import import_apps
    from jobqueue.config import find_project_settings
    from jobqueue.log import settle_logging
    from jobqueue.recurring import tasks_from_registry, tasks_from_settings

    project = find_project_settings().values
    import_apps(list(args.app) or list(project.get("apps", [])))
    settle_logging()
    tasks = tasks_from_registry() + tasks_from_settings(project)
    now = datetime.now(UTC)
    next_runs = {task.key: task.next_occurrence(now) for task in tasks}
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "task": t.key,
                        "cron": t.cron,
                        "timezone": t.timezone,
                        "job": t.job_name,
                        "next_run": iso(next_runs[t.key]),
                    }
                    for t in tasks
                ],
                indent=2,
            )
        )
        return 0
    print(
        table(
            [(t.key, t.cron, t.timezone, t.job_name, iso(next_runs[t.key])) for t in tasks],
            ["TASK", "CRON", "TIMEZONE", "JOB", "NEXT RUN"],
        )
    )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    count = admin_for(args).prune(status=args.status, older_than=args.older_than)
    print(f"pruned {count} {args.status} job(s)")
    return 0
