"""A producer process for the bounded-queue test: enqueues COUNT naps into the queue
``bounded`` (max_pending BOUND), one at a time; each is tried at once and, when the queue is
full, again with ``block=``. Prints how many were refused at once, as JSON."""

from __future__ import annotations

import json
import sys

from jobqueue import JobCall, JobQueue, QueueFullError


def main(url: str, bound: int, count: int) -> None:
    queue = JobQueue(url, queues={"bounded": {"max_pending": bound}})
    refused = 0
    for _ in range(count):
        call = JobCall("ledger.nap", args=(0.02,), queue="bounded")
        try:
            queue.enqueue_many([call])
        except QueueFullError:
            refused += 1
            queue.enqueue_many([call], block=120)
    print(json.dumps({"refused": refused}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
