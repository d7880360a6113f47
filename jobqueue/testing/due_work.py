"""A due-work-harness host for applications on jobqueue (``pip install 'jobqueue[due-work]'``).

`due-work-harness <https://pypi.org/project/due-work-harness/>`_ kills a worker after every
commit and after every external call, loses the reply to each commit, and fails unless every
such history ends where normal operation does. This module supplies what it needs from an app
on jobqueue and SQLAlchemy:

* :func:`hosted` builds and installs the :class:`~due_work_harness.Host` for one test: a commit
  counter over SQLAlchemy's hooks on the queue's engine (and your app's engines), worker death
  right after any commit, and on PostgreSQL and MariaDB lost replies through a TCP proxy the
  queue connects through;
* :meth:`Harness.worker_pass` is a worker's pass (claim, run, fenced write), the transition a
  history interrupts; :meth:`Harness.recover` is the real ``jobrunner work --burst``;
* :func:`job_history` makes "a worker runs this job" a handoff, :func:`contract` a whole
  :class:`~due_work_harness.DueWorkContract` with jobqueue's ownership (profile B: claim, fence,
  heartbeat, rescue) and recovery (profile A: :meth:`jobqueue.JobQueue.due_jobs`, the claim's
  own predicate) bound to production, beside your handoffs.

See "Prove your handoffs" in docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from due_work_harness import ExternalCall, HandoffHistory, Host
from due_work_harness import hosted as harness_hosted
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

import jobqueue
from jobqueue import queue as queue_module
from jobqueue.db import create_engine
from jobqueue.queue import JobQueue
from jobqueue.runtime import maintenance
from jobqueue.settings import DEFAULT_DEAD_THRESHOLD
from jobqueue.testing._active import active, delivery, recover, running, worker_pass
from jobqueue.testing._faults import CountedCommits, counting_commits
from jobqueue.testing._owners import Owners
from jobqueue.testing._proxy import CuttableProxy
from jobqueue.testing._selection import DueSelectionInspector
from jobqueue.testing._worker_pass import WorkerPass, run_burst

__all__ = ["Harness", "active", "hosted"]


@dataclass
class Harness:
    """One test's jobqueue under the harness: the queue (through the proxy where there is
    one), the URL recovery connects to directly, and the apps ``jobrunner work`` imports."""

    jobqueue: JobQueue
    database_url: str
    apps: Sequence[str]
    cwd: Path
    paths: list[Path] = field(default_factory=list)
    app_engines: list[Engine] = field(default_factory=list)
    proxy: CuttableProxy | None = None

    def engines(self) -> list[Engine]:
        """Every engine whose commits a worker makes: the queue's and the app's."""
        return [self.jobqueue.engine, *self.app_engines]

    def app_engine(self, url: str) -> Engine:
        """Your app's engine on ``url`` (configured for SQLite as jobqueue's own), watched by
        the harness like the queue's: its commits count, and a dead worker's are refused."""
        if not self.app_engines:
            self.app_engines.append(create_engine(url))
        return self.app_engines[0]

    def worker_pass(self, queues: Sequence[str] | None = None, batch: int = 2) -> WorkerPass:
        """A worker's pass over ``queues`` until nothing is due (see :class:`WorkerPass`)."""
        return WorkerPass(self.jobqueue, queues=queues, batch=batch)

    def recover(self) -> None:
        """``jobrunner work --burst`` on the real database: rescue, then run what is due."""
        run_burst(self.database_url, apps=self.apps, cwd=self.cwd, paths=self.paths)

    def kill_after(self, kill_after: int | None) -> AbstractContextManager[CountedCommits]:
        """The host's worker killer: count commits, die right after commit ``kill_after``."""
        return counting_commits(self.engines, kill_after=kill_after)

    def lose_reply(self, lose_at: int | None) -> AbstractContextManager[CountedCommits]:
        """The host's reply breaker: the reply to commit ``lose_at`` is lost in the proxy."""
        return counting_commits(self.engines, lose_at=lose_at, proxy=self.proxy)


@contextmanager
def hosted(
    database_url: str,
    *,
    apps: Sequence[str],
    production_packages: Collection[str] = (),
    cwd: Path | None = None,
    paths: Sequence[Path] = (),
    lose_replies: bool = True,
) -> Iterator[Harness]:
    """Install the host for one test, on a migrated database at ``database_url``.

    ``apps`` are the modules that define your jobs (as ``jobrunner work --app``), importable
    from ``cwd``; ``production_packages`` are your own packages, which the harness requires
    every binding to reach (jobqueue is always one). The queue becomes the default queue for the
    block; on PostgreSQL and MariaDB it connects through a proxy that can lose one reply."""
    proxy = None
    if lose_replies and make_url(database_url).host:  # a server on the network
        proxy = CuttableProxy(database_url)
    queue = JobQueue(proxy.url if proxy is not None else database_url)
    harness = Harness(queue, database_url, list(apps), cwd or Path.cwd(), list(paths), proxy=proxy)
    host = Host(
        production_packages=frozenset({"jobqueue", *production_packages}),
        worker_killer=harness.kill_after,
        reply_breaker=harness.lose_reply if proxy is not None else None,
        selection_inspectors=(DueSelectionInspector(),),
    )
    previous = queue_module._default
    jobqueue.set_default_queue(queue)
    running.append(harness)
    try:
        with harness_hosted(host):
            yield harness
    finally:
        running.remove(harness)
        jobqueue.set_default_queue(previous)
        queue.close()
        for engine in harness.app_engines:
            engine.dispose()
        if proxy is not None:
            proxy.close()


def job_history(
    name: str,
    *,
    enqueue: Callable[[], Any],
    observe: Callable[[Any], Any],
    queues: Sequence[str] | None = None,
    batch: int = 2,
    external_calls: Sequence[ExternalCall] = (),
) -> HandoffHistory[Any, Any]:
    """ "A worker runs the jobs ``enqueue`` enqueued": the worker's pass is the transition, and
    ``observe`` sees the jobs' effects (and, if you like, their statuses)."""
    return HandoffHistory(
        name=name,
        arrange=enqueue,
        transition=worker_pass(queues, batch),
        observe=observe,
        external_calls=tuple(external_calls),
    )


from jobqueue.testing._contract import AT_LEAST_ONCE, contract  # noqa: E402

__all__ += ["AT_LEAST_ONCE", "contract", "delivery", "job_history", "recover", "worker_pass"]


def held_by_dead_worker(queues: Sequence[str] | None = None, limit: int = 1) -> list[str]:
    """Arrange jobs whose worker died holding them: claimed by a registered worker process
    (a stand-in child, really killed), for histories of the rescue. Returns their ids."""
    owners = Owners(active().jobqueue)
    try:
        return [job.id for job in owners.claim(list(queues) if queues else None, limit)]
    finally:
        owners.close()


def rescue_pass(*_handle: object) -> None:
    """The supervisor's maintenance pass over dead workers (``runtime.maintenance.rescue``),
    as a transition."""
    maintenance.rescue(active().jobqueue, threshold_seconds=DEFAULT_DEAD_THRESHOLD)


__all__ += ["held_by_dead_worker", "rescue_pass"]
