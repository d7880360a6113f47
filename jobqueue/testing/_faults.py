"""Worker death and lost replies, over SQLAlchemy's own hooks on the engines a worker uses.

A commit counts when its transaction wrote (an INSERT, UPDATE or DELETE ran in it): a
read-only transaction's COMMIT is no boundary any handoff could be split across. The count
sits in the dialect's ``do_commit``, the one place every driver's COMMIT passes, so it sees
the commit land before it kills: right after commit k the worker dies, and from then on every
statement on those engines raises :class:`WorkerDied` (a rollback excepted: the server would
roll back a dead session anyway). On exit a dead worker's pooled connections are closed, as a
dead process's would be, so no lock it held outlives it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from due_work_harness.worker_death import WorkerDied
from sqlalchemy import Engine, event

from jobqueue.testing._proxy import CuttableProxy, client_port

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _writes(statement: str) -> bool:
    words = statement.lstrip().split(None, 1)
    if not words:
        return False
    first = words[0].upper()
    if first == "WITH":  # a CTE that writes (PostgreSQL's enqueue with its NOTIFY)
        return any(f" {word} " in f" {statement.upper()} " for word in _WRITES)
    return first in _WRITES


class CountedCommits:
    """What a fault's context yields: commits counted, and the worker's fate.

    ``commits``/``count`` is how many writing commits landed; ``dead`` whether the worker was
    killed; ``failure`` the driver error a lost reply raised (None while none has)."""

    def __init__(self, kill_after: int | None, lose_at: int | None) -> None:
        self._kill_after = kill_after
        self._lose_at = lose_at
        self.commits = 0
        self.dead = False
        self.failure: BaseException | None = None
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self.commits

    def kill_now(self, reason: str) -> None:
        self.dead = True
        raise WorkerDied(reason)

    def refuse_if_dead(self) -> None:
        if self.dead:
            raise WorkerDied("the worker is dead; its connections send nothing more")

    def losing_next(self) -> bool:
        with self._lock:
            return self._lose_at is not None and self.commits + 1 == self._lose_at

    def committed(self) -> None:
        with self._lock:
            self.commits += 1
            chosen = self.commits == self._kill_after
        if chosen:
            self.kill_now(f"worker died right after commit {self.commits}")


class _Watched:
    """The hooks on one engine's dialect, shared by every counter open on it (the harness opens
    a killer and a reply breaker at once): installed by the first, removed by the last."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counters: list[tuple[CountedCommits, CuttableProxy | None]] = []
        self.wrote: set[int] = set()
        dialect = engine.dialect
        self._commit, self._rollback = dialect.do_commit, dialect.do_rollback
        dialect.do_commit = self.do_commit  # type: ignore[method-assign,assignment]
        dialect.do_rollback = self.do_rollback  # type: ignore[method-assign,assignment]
        event.listen(engine, "before_cursor_execute", self.before_execute)

    def remove(self) -> None:
        del self.engine.dialect.do_commit
        del self.engine.dialect.do_rollback
        event.remove(self.engine, "before_cursor_execute", self.before_execute)

    def before_execute(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        dead = any(counted.dead for counted, _ in self.counters)
        if dead and statement.lstrip().upper().startswith("ROLLBACK"):
            return
        for counted, _ in self.counters:
            counted.refuse_if_dead()
        if _writes(statement):
            self.wrote.add(id(conn.connection.dbapi_connection))

    def do_commit(self, pooled: Any) -> None:
        for counted, _ in self.counters:
            counted.refuse_if_dead()
        # SQLAlchemy hands over its pooled proxy; the statements saw the driver's connection.
        raw = getattr(pooled, "dbapi_connection", pooled)
        writing = id(raw) in self.wrote
        self.wrote.discard(id(raw))
        losing = [
            (counted, proxy)
            for counted, proxy in self.counters
            if writing and proxy is not None and counted.losing_next()
        ]
        port = client_port(raw) if losing else None
        for _, proxy in losing:
            if port is not None and proxy is not None:
                proxy.lose_next_answer(port)
        try:
            self._commit(pooled)
        except Exception as error:
            if port is not None:
                for counted, _ in losing:
                    counted.failure = error
                    counted.commits += 1
                for counted, _ in self.counters:
                    if (counted, _) not in losing and writing:
                        counted.commits += 1  # the commit landed; its answer was lost
            raise
        if writing:
            for counted, _ in list(self.counters):
                counted.committed()

    def do_rollback(self, pooled: Any) -> None:
        self.wrote.discard(id(getattr(pooled, "dbapi_connection", pooled)))
        self._rollback(pooled)


_watched: dict[int, _Watched] = {}


@contextmanager
def counting_commits(
    engines: Callable[[], Sequence[Engine]],
    *,
    kill_after: int | None = None,
    lose_at: int | None = None,
    proxy: CuttableProxy | None = None,
) -> Iterator[CountedCommits]:
    """Count writing commits on ``engines()``; die after commit ``kill_after``, or lose the
    reply to commit ``lose_at`` through ``proxy``."""
    counted = CountedCommits(kill_after, lose_at)
    entry = (counted, proxy)
    watched = []
    for engine in engines():
        watch = _watched.get(id(engine))
        if watch is None:
            watch = _watched[id(engine)] = _Watched(engine)
        watch.counters.append(entry)
        watched.append(watch)
    try:
        yield counted
    finally:
        for watch in watched:
            watch.counters.remove(entry)
            if not watch.counters:
                watch.remove()
                del _watched[id(watch.engine)]
        if counted.dead:
            for engine in engines():
                engine.dispose()
