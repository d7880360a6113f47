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


#: Longer is surely a typo (and past it, "now minus the duration" leaves the calendar).
MAX_DURATION = timedelta(days=100 * 365)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` (or ``0``).

    The unit is required: these durations choose what ``prune`` deletes, and a bare ``30``
    meant 30 seconds where 30 days was likely meant.
    """
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 12h, 30d, 2w")
    amount, unit = float(match.group(1)), match.group(2)
    if not unit and amount != 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no unit: say {match.group(1)}s, {match.group(1)}m, "
            f"{match.group(1)}h, {match.group(1)}d or {match.group(1)}w"
        )
    seconds = amount * _UNITS[unit or "s"]
    if seconds > MAX_DURATION.total_seconds():
        raise argparse.ArgumentTypeError(f"{text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def admin_for(args: argparse.Namespace) -> Admin:
    """The operator API of the named database, whose schema is checked first: an unmigrated
    database gets the same "run `jobrunner migrate`" answer as enqueue, not a raw SQL error."""
    jobqueue = JobQueue(args.database_url)
    jobqueue.verify_schema()
    return Admin(jobqueue)


#: C0 and C1 controls (ESC starts every terminal sequence), and the Unicode marks that
#: reorder or break lines when displayed.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(value: object, *, lines: bool = False) -> str:
    """``value`` as text safe for a terminal: control characters (escape sequences that
    retitle the window, move the cursor or fake a log line, and carriage returns) become
    ``\\xNN``; newlines and tabs stay only where ``lines`` allows them (tracebacks)."""
    text = str(value)
    if not lines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [[printable(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)
