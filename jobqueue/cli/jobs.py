"""``jobrunner jobs``: list, show, retry, cancel or discard jobs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from jobqueue.cli.common import admin_for, iso, printable, table
from jobqueue.schema import STATUSES
from jobqueue.serialization import decode_value
from jobqueue.store.jobs import JobRecord
from jobqueue.store.steps import StepSummary


def add_jobs_parser(commands: Any, add_database_url: Any) -> None:
    """``jobrunner jobs list|show|retry|cancel|discard``."""
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

    show = actions.add_parser(
        "show", help="one job with its arguments, result, last error and durable steps"
    )
    add_database_url(show)
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_jobs_show)

    retry = actions.add_parser("retry", help="failed, cancelled or expired jobs back to pending")
    add_database_url(retry)
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true")
    retry.add_argument("--queue", help="with --all-failed: only this queue")
    retry.add_argument(
        "--from-step",
        metavar="NAME",
        help="forget durable step NAME and every step recorded after it (jobs show lists them), "
        "so the retried job runs them again and returns the records of the earlier ones; "
        "a job without that step is an error, and nothing is retried",
    )
    retry.set_defaults(handler=cmd_jobs_retry)

    cancel = actions.add_parser("cancel", help="cancel pending jobs; ask running ones to stop")
    add_database_url(cancel)
    cancel.add_argument("ids", nargs="+", metavar="ID")
    cancel.set_defaults(handler=cmd_jobs_cancel)

    discard = actions.add_parser("discard", help="delete failed, cancelled or expired jobs")
    add_database_url(discard)
    discard.add_argument("ids", nargs="+", metavar="ID")
    discard.set_defaults(handler=cmd_jobs_discard)


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
        "scheduled_for": iso(job.scheduled_for),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }
    if full:
        try:
            data["args"], data["kwargs"] = job.args, job.kwargs
        except ValueError as error:
            data["args"] = f"<undecodable: {error}> {job.args_json[:200]}"
        data["claimed_by"] = job.claimed_by
        data["result"] = decode_value(job.result) if job.result is not None else None
        data["last_error"] = asdict(job.error) if job.error else None
    return data


def cmd_jobs_list(args: argparse.Namespace) -> int:
    jobs = admin_for(args).list_jobs(
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
                    f"{j.failed_attempts}/{j.max_attempts}",
                    iso(j.scheduled_for),
                )
                for j in jobs
            ],
            # Failed attempts against the limit: a job retried once shows 1/2, not 2/2.
            ["ID", "NAME", "QUEUE", "STATUS", "FAILURES", "SCHEDULED_FOR"],
        )
    )
    if len(jobs) == args.limit:
        print(f"(more: --before {jobs[-1].id})")
    return 0


def _step_dicts(steps: list[StepSummary]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "attempt": s.attempt,
            "recorded_at": iso(s.recorded_at),
            "done": s.done,
            "size": s.size,
        }
        for s in steps
    ]


def cmd_jobs_show(args: argparse.Namespace) -> int:
    admin = admin_for(args)
    data = _job_dict(admin.get_job(args.id), full=True)
    data["steps"] = _step_dicts(admin.job_steps(args.id))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    error, steps = data.pop("last_error"), data.pop("steps")
    for key, value in data.items():
        # Arguments as JSON, as they are stored and as the dashboard shows them.
        shown = (
            json.dumps(value, ensure_ascii=False) if key in ("args", "kwargs", "result") else value
        )
        print(f"{key + ':':17}{printable(shown)}")
    if steps:
        print("steps:")
        print(table([_step_row(s) for s in steps], _STEP_HEADERS))
    if error:
        summary = f"{error['type']}: {error['message']}" if error["type"] else error["message"]
        print(f"{'last_error:':17}{printable(summary)}")
        if error["traceback"]:
            print(printable(error["traceback"].rstrip(), lines=True))
    return 0


_STEP_HEADERS = ("NAME", "ATTEMPT", "RECORDED_AT", "STATE", "SIZE")


def _step_row(step: dict[str, Any]) -> tuple[object, ...]:
    state = "done" if step["done"] else "in progress"
    size = "-" if step["size"] is None else f"{step['size']} B"
    return (step["name"], step["attempt"], step["recorded_at"], state, size)


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    admin = admin_for(args)
    if args.all_failed == bool(args.ids):
        raise ValueError("give job ids, or --all-failed (optionally with --queue)")
    if args.all_failed and args.from_step is not None:
        raise ValueError("--from-step needs job ids, not --all-failed")
    if args.all_failed:
        moved = admin.retry_all_failed(queue=args.queue)
    else:
        moved = admin.retry(args.ids, from_step=args.from_step)
    skipped = [job_id for job_id in args.ids if job_id not in moved]
    from_step = f" from step {args.from_step!r}" if args.from_step is not None and moved else ""
    print(f"retried {len(moved)} job(s){from_step}")
    if skipped:
        print(f"not failed, cancelled or expired, left alone: {' '.join(skipped)}")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    result = admin_for(args).cancel(args.ids)
    print(
        f"cancelled {len(result.cancelled)} job(s); asked {len(result.requested)} running "
        f"job(s) to stop; {len(result.unchanged)} already finished"
    )
    return 0


def cmd_jobs_discard(args: argparse.Namespace) -> int:
    deleted = admin_for(args).discard(args.ids)
    skipped = [job_id for job_id in args.ids if job_id not in deleted]
    print(f"discarded {len(deleted)} job(s)")
    if skipped:
        print(f"not failed, cancelled or expired, kept: {' '.join(skipped)}")
    return 0
