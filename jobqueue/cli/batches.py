"""``jobrunner batches``: list, show or cancel batches (see jobqueue.batches)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jobqueue.cli.common import admin_for, iso, printable, table
from jobqueue.errors import BatchNotFoundError
from jobqueue.store.batches import BatchRecord


def add_batches_parser(commands: Any, add_database_url: Any) -> None:
    """``jobrunner batches list|show|cancel``."""
    batches = commands.add_parser("batches", help="list, show or cancel batches of jobs")
    actions = batches.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="batches, newest first")
    add_database_url(listing)
    listing.add_argument("--unfinished", action="store_true", help="only unfinished ones")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_batches_list)

    show = actions.add_parser(
        "show", help="one batch: progress, callbacks, jobs by status, failed jobs"
    )
    add_database_url(show)
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_batches_show)

    cancel = actions.add_parser(
        "cancel",
        help="cancel a batch and its nested batches: jobs not yet running are cancelled, "
        "running ones asked to stop; its callbacks still run once",
    )
    add_database_url(cancel)
    cancel.add_argument("id")
    cancel.set_defaults(handler=cmd_batches_cancel)


def batch_dict(batch: BatchRecord) -> dict[str, Any]:
    return {
        "id": batch.id,
        "status": batch.status,
        "description": batch.description,
        "parent_id": batch.parent_id,
        "total": batch.total,
        "unfinished": batch.unfinished,
        "succeeded": batch.succeeded,
        "failed": batch.failed,
        "cancelled": batch.cancelled,
        "callbacks": list(batch.callback_kinds),
        "callback_jobs": list(batch.callback_ids),
        "callbacks_unfinished": batch.callbacks_unfinished,
        "created_at": iso(batch.created_at),
        "members_done_at": iso(batch.members_done_at),
        "finished_at": iso(batch.finished_at),
        "cancelled_at": iso(batch.cancelled_at),
    }


def cmd_batches_list(args: argparse.Namespace) -> int:
    found = admin_for(args).batches.newest(unfinished_only=args.unfinished, limit=args.limit)
    if args.json:
        print(json.dumps([batch_dict(b) for b in found], indent=2))
        return 0
    rows = [
        (
            b.id,
            b.status,
            f"{b.total - b.unfinished}/{b.total}",
            b.failed,
            b.cancelled,
            iso(b.created_at),
            b.description or "",
        )
        for b in found
    ]
    print(table(rows, ("ID", "STATUS", "DONE", "FAILED", "CANCELLED", "CREATED", "DESCRIPTION")))
    return 0


def cmd_batches_show(args: argparse.Namespace) -> int:
    admin = admin_for(args).batches
    batch = admin.get(args.id)
    if batch is None:
        raise BatchNotFoundError(f"no batch {args.id} (never written, or pruned)")
    data = batch_dict(batch)
    data["jobs"] = batch.jobs
    data["failed_jobs"] = [
        {"id": i, "name": n, "status": s} for i, n, s in admin.failed_jobs(args.id)
    ]
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    failed = data.pop("failed_jobs")
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        print(f"{key + ':':22}{printable(shown)}")
    if failed:
        print("failed or cancelled jobs:")
        print(table([(f["id"], f["name"], f["status"]) for f in failed], ("ID", "NAME", "STATUS")))
    return 0


def cmd_batches_cancel(args: argparse.Namespace) -> int:
    report = admin_for(args).batches.cancel(args.id)
    if report is None:
        raise BatchNotFoundError(f"no batch {args.id} (never written, or pruned)")
    print(
        f"cancelled batch {args.id} and {len(report.batches) - 1} nested batch(es): "
        f"{len(report.cancelled)} job(s) cancelled, {len(report.stopping)} running job(s) "
        "asked to stop; its callbacks run once the last member has ended"
    )
    return 0
