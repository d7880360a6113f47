"""Rate limits as written and as stored: ``"100/m"``, ``"10/s"``, ``"5000/h"``, ``"50/10s"``
(a count per period), one or several per job, held in ``job_queue.rate_limits`` as
``"count/seconds,..."``. The claim counts a key's starts in each sliding window
(:mod:`jobqueue.store.gate`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


@dataclass(frozen=True)
class Window:
    """At most ``count`` units of cost start in any ``seconds``-long stretch of time."""

    count: int
    seconds: float

    def __str__(self) -> str:
        """The stored form, ``count/seconds``, exact (``:g`` would write a month as
        ``2.592e+06``, which the parser does not read back)."""
        seconds = f"{self.seconds:.6f}".rstrip("0").rstrip(".")
        return f"{self.count}/{seconds}"


def parse_rate(text: object) -> Window:
    """``"100/m"`` or ``"50/10s"`` (a bare number of seconds, ``"50/10"``, is the stored form)
    as a :class:`Window`; ValueError says what is accepted."""
    match = _FORM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"a rate limit is a count per period such as '100/m', '10/s', '5000/h' or "
            f"'50/10s' (units ms, s, m, h, d), not {text!r}"
        )
    count, number, unit = int(match[1]), match[2], match[3]
    if not number and unit is None:
        raise ValueError(f"a rate limit needs a period after the '/', not {text!r}")
    seconds = (float(number) if number else 1.0) * _UNITS[unit or "s"]
    if count < 1 or seconds <= 0:
        raise ValueError(f"a rate limit needs a count >= 1 and a period > 0, not {text!r}")
    return Window(count, seconds)


def windows_text(limits: Sequence[object]) -> str:
    """Rate limits as stored: parsed, checked, and written as ``"count/seconds,..."``."""
    windows = [parse_rate(limit) for limit in limits]
    if not windows:
        raise ValueError("rate_limits needs at least one limit")
    text = ",".join(str(window) for window in windows)
    if len(text) > 255:
        raise ValueError(f"too many rate limits for one job: {limits!r}")
    return text


def stored_windows(text: str) -> list[Window]:
    """The windows of a stored ``"count/seconds,..."``."""
    windows = []
    for part in text.split(","):
        count, seconds = part.split("/")
        windows.append(Window(int(count), float(seconds)))
    return windows


def rate_windows(
    rate_limit: object, rate_limits: object, rate_key: object, rate_cost: object
) -> str | None:
    """A job's rate options together, as stored windows (None: not rate-limited): one of
    ``rate_limit`` / ``rate_limits``; a key and a cost only with a limit; a fixed cost that no
    window could ever admit refused."""
    if rate_limit is not None and rate_limits is not None:
        raise ValueError("pass rate_limit= or rate_limits=, not both")
    given = rate_limits if rate_limit is None else [rate_limit]
    if given is None:
        if rate_key is not None or rate_cost is not None:
            raise ValueError("rate_key and rate_cost need a rate_limit")
        return None
    if isinstance(given, str) or not isinstance(given, list | tuple):
        raise ValueError(f"rate_limits must be a list of limits such as ['10/s'], not {given!r}")
    windows = windows_text(list(given))
    if rate_key is not None and not callable(rate_key):
        check_key("rate_key", rate_key)
    if rate_cost is not None and not callable(rate_cost):
        check_cost(rate_cost, windows)
    return windows


def check_key(what: str, key: object) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= 255:
        raise ValueError(f"{what} must be a string of 1 to 255 characters, not {key!r}")
    return key


def check_cost(cost: object, windows: str) -> int:
    """A start's cost: an integer >= 1 that fits in every window (else it could never start)."""
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise ValueError(f"rate_cost must be an integer >= 1, not {cost!r}")
    smallest = min(window.count for window in stored_windows(windows))
    if cost > smallest:
        raise ValueError(f"rate_cost {cost} is more than a window allows ({smallest})")
    return cost
