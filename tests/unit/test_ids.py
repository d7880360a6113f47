"""Batch job ids are real ULIDs: python-ulid parses each back to the same text, with the
batch's timestamp, and they are unique and in creation order."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ulid import ULID

from jobqueue.ids import _randomness, new_ids


def test_every_id_is_a_ulid_of_now_unique_and_increasing() -> None:
    before = datetime.now(UTC)
    ids = new_ids(5_000)
    after = datetime.now(UTC)
    assert len(set(ids)) == 5_000
    assert ids == sorted(ids)
    for text in ids:
        parsed = ULID.from_str(text)
        assert str(parsed) == text and len(text) == 26
        assert before.timestamp() - 0.001 <= parsed.timestamp <= after.timestamp() + 0.001


def test_the_random_part_encodes_as_python_ulid_does() -> None:
    for value in (0, 1, 1023, 1024, 2**79, 2**80 - 1, 0x1234_5678_9ABC_DEF0_1357):
        assert _randomness(value) == str(ULID.from_int(value))[10:]


def test_batches_do_not_repeat_ids() -> None:
    seen: set[str] = set()
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:  # many batches within the same milliseconds
        batch = new_ids(50)
        assert seen.isdisjoint(batch)
        seen.update(batch)


def test_ids_made_one_after_another_sort_in_that_order() -> None:
    """Many single enqueues fall in the same millisecond: each counts on from the last."""
    ids = [new_ids(1)[0] for _ in range(2_000)] + new_ids(100) + [new_ids(1)[0]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
