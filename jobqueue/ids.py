"""Job ids: ULIDs, made a batch at a time for the batch enqueue.

``str(ULID())`` costs about 10 us (python-ulid builds an object, then base32-encodes it); a
batch of 1,000 jobs spent a third of its Python time there. A batch shares one millisecond
timestamp, so its ids are that prefix (encoded once, by python-ulid) followed by 80 random bits
counted up from a random start. Like python-ulid's own generator they are monotonic in the
process: a batch in the same millisecond as the last (or a clock that stepped back) counts on
from the last id given out, so ids made one after another always sort in that order. The 80
bits are encoded ten at a time from a table of the 1,024 two-character Crockford pairs. Tests
check every id against python-ulid's own parser.
"""

from __future__ import annotations

import os
import threading
import time

from ulid import ULID

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [first + second for first in _CROCKFORD for second in _CROCKFORD]
_TEN_BITS = 1023


def new_ids(count: int) -> list[str]:
    """``count`` new ULIDs as text, each greater than any this process made before."""
    global _last
    with _lock:
        millisecond = time.time_ns() // 1_000_000
        last_millisecond, last_value = _last
        if millisecond <= last_millisecond and last_value + count < _RANDOM_SPAN:
            millisecond, start = last_millisecond, last_value + 1
        else:
            millisecond = max(millisecond, last_millisecond + 1)
            # 79 random bits: counting on from them stays within the 80 for 2**79 ids.
            start = int.from_bytes(os.urandom(10), "big") >> 1
        _last = (millisecond, start + count - 1)
    prefix = str(ULID.from_int(millisecond << 80))[:10]
    return [prefix + _randomness(start + offset) for offset in range(count)]


_RANDOM_SPAN = 1 << 80
_lock = threading.Lock()
#: The millisecond and the random part of the last id given out.
_last = (0, 0)


def _randomness(value: int) -> str:
    """The 16 characters of an 80-bit value."""
    pairs = _PAIRS
    return (
        pairs[value >> 70]
        + pairs[(value >> 60) & _TEN_BITS]
        + pairs[(value >> 50) & _TEN_BITS]
        + pairs[(value >> 40) & _TEN_BITS]
        + pairs[(value >> 30) & _TEN_BITS]
        + pairs[(value >> 20) & _TEN_BITS]
        + pairs[(value >> 10) & _TEN_BITS]
        + pairs[value & _TEN_BITS]
    )
