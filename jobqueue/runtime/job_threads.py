"""The threads that run a worker's sync jobs.

Why not ``ThreadPoolExecutor``: its ``submit()`` builds a Future and takes a semaphore on every
call, which py-spy showed as a sixth of the claim loop's time with tiny jobs. The worker needs
neither (it tracks each execution itself), so a plain queue feeds a fixed set of threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_Task = tuple[Callable[..., None], tuple[Any, ...]]


class JobThreads:
    def __init__(self, count: int, name: str) -> None:
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}_{index}", daemon=True)
            for index in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        self._queue.put((function, args))

    def shutdown(self) -> None:
        """Drop what has not started and let each thread end after its current task.

        Safe to call more than once: draining also takes the end markers an earlier call
        queued for threads still busy, so every call queues them again (spare ones are never
        read and cost nothing).
        """
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(None)

    def alive(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    def _run(self) -> None:
        while (task := self._queue.get()) is not None:
            function, args = task
            function(*args)  # the worker's runner records every outcome, errors included
