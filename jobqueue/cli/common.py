"""What the ``jobrunner`` operator commands share: durations, tables, timestamps, and the
:class:`~jobqueue.admin.Admin` of the database a command names."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from jobqueue.admin import Admin
from jobqueue.queue import JobQueue

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s`` (or ``90``), ``15m``, ``12h``, ``30d``, ``2w``."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 12h, 30d, 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def admin_for(args: argparse.Namespace) -> Admin:
    return Admin(JobQueue(args.database_url))


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)
