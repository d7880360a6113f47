"""The harness of the running test, for bindings declared before any test starts: a contract
is built when pytest collects it, the database exists only once a test runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from due_work_harness import CallableDelivery

from jobqueue.queue import JobQueue


class Running(Protocol):
    jobqueue: JobQueue

    def recover(self) -> None: ...

    def worker_pass(self, queues: Sequence[str] | None = None, batch: int = 2) -> Any: ...


running: list[Running] = []


def active() -> Any:
    """The harness of the running test (see :func:`jobqueue.testing.due_work.hosted`)."""
    assert running, "no jobqueue due-work harness is active: use jobqueue.testing.due_work.hosted"
    return running[-1]


def worker_pass(queues: Sequence[str] | None = None, batch: int = 2) -> Callable[..., None]:
    """The transition of a handoff run by a worker: one pass of the active harness's worker."""

    def run(*handle: object) -> None:
        active().worker_pass(queues, batch)(*handle)

    return run


def recover() -> None:
    """Recovery for a delivery declared at import time: the active harness's burst."""
    active().recover()


def delivery(name: str) -> CallableDelivery:
    """The delivery of every jobqueue handoff: the job row is the message, so nothing is lost
    apart from the database, and ``jobrunner work --burst`` recovers."""
    return CallableDelivery(name=name, recover=recover)
