"""Operator commands: ``jobrunner jobs|queues|processes|stats|prune``.

Tables for people by default, ``--json`` for scripts. Exit codes: 0 done, 1 an error named in
one line (unknown id, bad filter, unreachable database), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue.admin import Admin
from jobqueue.queue import JobQueue
from jobqueue.schema import STATUSES
from jobqueue.store import JobRecord

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s`` (or ``90``), ``15m``, ``12h``, ``30d``, ``2w``."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 12h, 30d, 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def add_admin_parsers(commands: Any, add_database_url: Any) -> None:
    jobs = commands.add_parser("jobs", help="list, show, retry, cancel or discard jobs")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list jobs, newest first")
    add_database_url(listing)
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--queue")
    listing.add_argument("--name")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--before", metavar="ID", help="page: jobs older than this id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_jobs_list)

    show = actions.add_parser("show", help="one job with its arguments and last error")
    add_database_url(show)
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_jobs_show)

    retry = actions.add_parser("retry", help="failed or cancelled jobs back to pending")
    add_database_url(retry)
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true")
    retry.add_argument("--queue", help="with --all-failed: only this queue")
    retry.set_defaults(handler=cmd_jobs_retry)

    cancel = actions.add_parser("cancel", help="cancel pending jobs; ask running ones to stop")
    add_database_url(cancel)
    cancel.add_argument("ids", nargs="+", metavar="ID")
    cancel.set_defaults(handler=cmd_jobs_cancel)

    discard = actions.add_parser("discard", help="delete failed or cancelled jobs")
    add_database_url(discard)
    discard.add_argument("ids", nargs="+", metavar="ID")
    discard.set_defaults(handler=cmd_jobs_discard)

    queues = commands.add_parser("queues", help="per-queue counts and latency; pause/resume")
    add_database_url(queues)
    queues.add_argument("--json", action="store_true")
    queues.set_defaults(handler=cmd_queues)
    queue_actions = queues.add_subparsers(dest="action", metavar="ACTION")
    for verb in ("pause", "resume"):
        sub = queue_actions.add_parser(verb, help=f"{verb} claiming from a queue")
        # SUPPRESS: a value given before the action (on `queues`) is not reset to None.
        sub.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS)
        sub.add_argument("queue")
        sub.set_defaults(handler=cmd_queue_pause if verb == "pause" else cmd_queue_resume)

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
    prune.add_argument("--status", required=True, choices=["succeeded", "failed", "cancelled"])
    prune.add_argument("--older-than", required=True, type=parse_duration, metavar="DURATION")
    prune.set_defaults(handler=cmd_prune)


def _admin(args: argparse.Namespace) -> Admin:
    return Admin(JobQueue(args.database_url))


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


def _job_dict(job: JobRecord, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "queue": job.queue,
        "status": job.status,
        "priority": job.priority,
        "attempts": job.attempts,
        "failed_attempts": job.failed_attempts,
        "max_attempts": job.max_attempts,
        "scheduled_for": _iso(job.scheduled_for),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }
    if full:
        try:
            data["args"], data["kwargs"] = job.args, job.kwargs
        except ValueError as error:
            data["args"] = f"<undecodable: {error}> {job.args_json[:200]}"
        data["claimed_by"] = job.claimed_by
        data["last_error"] = json.loads(job.last_error) if job.last_error else None
    return data


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def cmd_jobs_list(args: argparse.Namespace) -> int:
    jobs = _admin(args).list_jobs(
        status=args.status, queue=args.queue, name=args.name, limit=args.limit, before=args.before
    )
    if args.json:
        print(json.dumps([_job_dict(job) for job in jobs], indent=2))
        return 0
    print(
        table(
            [
                (
                    j.id,
                    j.name,
                    j.queue,
                    j.status,
                    f"{j.attempts}/{j.max_attempts}",
                    _iso(j.scheduled_for),
                )
                for j in jobs
            ],
            ["ID", "NAME", "QUEUE", "STATUS", "ATTEMPTS", "SCHEDULED_FOR"],
        )
    )
    if len(jobs) == args.limit:
        print(f"(more: --before {jobs[-1].id})")
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    data = _job_dict(_admin(args).get_job(args.id), full=True)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    error = data.pop("last_error")
    for key, value in data.items():
        print(f"{key + ':':17}{value}")
    if error:
        print(f"{'last_error:':17}{error.get('type')}: {error.get('message')}")
        if error.get("traceback"):
            print(error["traceback"].rstrip())
    return 0


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    admin = _admin(args)
    if args.all_failed == bool(args.ids):
        raise ValueError("give job ids, or --all-failed (optionally with --queue)")
    moved = admin.retry_all_failed(queue=args.queue) if args.all_failed else admin.retry(args.ids)
    skipped = [job_id for job_id in args.ids if job_id not in moved]
    print(f"retried {len(moved)} job(s)")
    if skipped:
        print(f"not failed or cancelled, left alone: {' '.join(skipped)}")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    result = _admin(args).cancel(args.ids)
    print(
        f"cancelled {len(result.cancelled)} job(s); asked {len(result.requested)} running "
        f"job(s) to stop; {len(result.unchanged)} already finished"
    )
    return 0


def cmd_jobs_discard(args: argparse.Namespace) -> int:
    deleted = _admin(args).discard(args.ids)
    skipped = [job_id for job_id in args.ids if job_id not in deleted]
    print(f"discarded {len(deleted)} job(s)")
    if skipped:
        print(f"not failed or cancelled, kept: {' '.join(skipped)}")
    return 0


def cmd_queues(args: argparse.Namespace) -> int:
    summaries = _admin(args).queues()
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
    changed = _admin(args).pause(args.queue)
    print(f"queue {args.queue!r} {'paused' if changed else 'was already paused'}")
    return 0


def cmd_queue_resume(args: argparse.Namespace) -> int:
    changed = _admin(args).resume(args.queue)
    print(f"queue {args.queue!r} {'resumed' if changed else 'was not paused'}")
    return 0


def cmd_processes(args: argparse.Namespace) -> int:
    rows = _admin(args).processes()
    now = datetime.now(UTC)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        **asdict(p),
                        "started_at": _iso(p.started_at),
                        "last_heartbeat_at": _iso(p.last_heartbeat_at),
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
    admin = _admin(args)
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
                "DISCARDED",
                "JOBS/S",
                "FAILURE RATE",
            ],
        )
    )
    return 0


def cmd_recurring(args: argparse.Namespace) -> int:
    from jobqueue.apps import import_apps
    from jobqueue.config import find_project_settings
    from jobqueue.schedule import Scheduler, tasks_from_registry, tasks_from_settings

    project = find_project_settings().values
    import_apps(list(args.app) or list(project.get("apps", [])))
    tasks = tasks_from_registry() + tasks_from_settings(project)
    scheduler = Scheduler(JobQueue(args.database_url), tasks)
    next_runs = scheduler.next_runs()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "task": t.key,
                        "cron": t.cron,
                        "timezone": t.timezone,
                        "job": t.job_name,
                        "next_run": _iso(next_runs[t.key]),
                    }
                    for t in tasks
                ],
                indent=2,
            )
        )
        return 0
    print(
        table(
            [(t.key, t.cron, t.timezone, t.job_name, _iso(next_runs[t.key])) for t in tasks],
            ["TASK", "CRON", "TIMEZONE", "JOB", "NEXT RUN"],
        )
    )
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    count = _admin(args).prune(status=args.status, older_than=args.older_than)
    print(f"pruned {count} {args.status} job(s)")
    return 0
